// service is a Go service in miniature: the dials, HTTP clients and
// connection pool that tracer's connect and connection findings are about,
// one subcommand per case.
//
//	service serve -http :8080,:8081 -db :5432 [-db-delay 20ms]
//	service dial -deadline 300ms -count 3 ADDR...
//	service http [-keepalive=false] [-close=false] [-requests N] [-every 50ms] URL
//	service pool -max 8 -workers 40 -ramp 1s ADDR
//
// serve listens (HTTP on each -http address, a line protocol on -db: one
// line in, "1" out after -db-delay) and prints "ready". The clients print
// "waiting" and wait for a line on stdin before they start, so a tracer
// can be pointed at their pid first; run their case (those with no fixed
// end, until a second line arrives); print one JSON object saying what
// they did; and keep their connections open until stdin closes. Every
// socket a client connects is counted, by family, in its dialer's Control
// hook, so the counts are the client's own and not inferred.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: service serve|dial|http|pool ...")
	}
	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "serve" {
		serve(args)
		return
	}
	cases := map[string]func([]string, *stdin) any{
		"dial": dial,
		"http": httpClient,
		"pool": pool,
	}
	run, ok := cases[cmd]
	if !ok {
		fail("unknown subcommand " + cmd)
	}
	in := watchStdin()
	fmt.Println("waiting")
	select {
	case <-in.start:
	case <-in.eof:
		return
	}
	out, err := json.Marshal(run(args, in))
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(string(out))
	<-in.eof
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "service:", msg)
	os.Exit(2)
}

// stdin: the first line starts the case, the second (or EOF) stops an
// open-ended one, EOF ends the program.
type stdin struct {
	start, stop, eof chan struct{}
}

func watchStdin() *stdin {
	in := &stdin{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	go func() {
		lines := bufio.NewScanner(os.Stdin)
		n := 0
		for lines.Scan() {
			n++
			switch n {
			case 1:
				close(in.start)
			case 2:
				close(in.stop)
			}
		}
		if n < 1 {
			close(in.start)
		}
		if n < 2 {
			close(in.stop)
		}
		close(in.eof)
	}()
	return in
}

func (in *stdin) stopped() bool {
	select {
	case <-in.stop:
		return true
	default:
		return false
	}
}

// sockets counts the sockets a dialer connects, by network (tcp4, tcp6).
type sockets struct {
	mu sync.Mutex
	n  map[string]int
}

func newSockets() *sockets { return &sockets{n: map[string]int{}} }

func (s *sockets) dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: func(network, _ string, _ syscall.RawConn) error {
			s.mu.Lock()
			s.n[network]++
			s.mu.Unlock()
			return nil
		},
	}
}

func (s *sockets) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := 0
	for _, n := range s.n {
		t += n
	}
	return t
}

func (s *sockets) byNetwork() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	httpAddrs := fs.String("http", "", "HTTP listen addresses, comma-separated")
	dbAddr := fs.String("db", "", "line-protocol listen address")
	dbDelay := fs.Duration("db-delay", 20*time.Millisecond, "time each query takes")
	_ = fs.Parse(args)
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	for _, addr := range strings.Split(*httpAddrs, ",") {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fail(err.Error())
		}
		// No idle timeout: a connection a client leaks stays open.
		go func() { _ = http.Serve(ln, handler) }()
	}
	if *dbAddr != "" {
		ln, err := net.Listen("tcp", *dbAddr)
		if err != nil {
			fail(err.Error())
		}
		go serveDB(ln, *dbDelay)
	}
	fmt.Println("ready")
	// Until stdin closes.
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func serveDB(ln net.Listener, delay time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			lines := bufio.NewScanner(c)
			for lines.Scan() {
				time.Sleep(delay)
				if _, err := io.WriteString(c, "1\n"); err != nil {
					return
				}
			}
		}()
	}
}

// dial connects to each ADDR -count times, one after another, with a dial
// deadline, closing each connection it gets.
func dial(args []string, _ *stdin) any {
	fs := flag.NewFlagSet("dial", flag.ExitOnError)
	deadline := fs.Duration("deadline", time.Second, "dial deadline")
	count := fs.Int("count", 1, "dials to each address")
	_ = fs.Parse(args)
	type result struct {
		Addr      string         `json:"addr"`
		Sockets   map[string]int `json:"sockets"`
		Connected map[string]int `json:"connected"`
		Timeouts  int            `json:"timeouts"`
		Errors    []string       `json:"errors"`
		ElapsedUs []int64        `json:"elapsed_us"`
	}
	var results []result
	for _, addr := range fs.Args() {
		s := newSockets()
		d := s.dialer(*deadline)
		r := result{Addr: addr, Connected: map[string]int{}, Errors: []string{}}
		for i := 0; i < *count; i++ {
			t := time.Now()
			c, err := d.Dial("tcp", addr)
			r.ElapsedUs = append(r.ElapsedUs, time.Since(t).Microseconds())
			var ne net.Error
			switch {
			case err == nil:
				r.Connected[c.RemoteAddr().String()]++
				_ = c.Close()
			case errors.As(err, &ne) && ne.Timeout():
				r.Timeouts++
			default:
				r.Errors = append(r.Errors, err.Error())
			}
		}
		r.Sockets = s.byNetwork()
		results = append(results, r)
	}
	return results
}

// httpClient makes GET requests, one every -every, -requests of them or
// (with 0) until told to stop. With -keepalive=false each request has a
// connection of its own; with -close=false bodies are neither read nor
// closed, so no connection goes back to the pool: each request dials a
// new one and the old ones stay open.
func httpClient(args []string, in *stdin) any {
	fs := flag.NewFlagSet("http", flag.ExitOnError)
	keepalive := fs.Bool("keepalive", true, "reuse connections")
	closeBodies := fs.Bool("close", true, "read and close response bodies")
	requests := fs.Int("requests", 0, "requests to make (0: until stopped)")
	every := fs.Duration("every", 50*time.Millisecond, "time between requests")
	_ = fs.Parse(args)
	url := fs.Arg(0)
	s := newSockets()
	client := &http.Client{
		// No Client.Timeout: it would also cut off the bodies left open.
		Transport: &http.Transport{
			DialContext:           s.dialer(5 * time.Second).DialContext,
			DisableKeepAlives:     !*keepalive,
			ResponseHeaderTimeout: 10 * time.Second,
		},
	}
	var open []*http.Response
	made, ok := 0, 0
	errs := []string{}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	until := in.stop
	if *requests > 0 {
		until = nil // a fixed number of requests: not stopped early
	}
	for *requests == 0 || made < *requests {
		if *requests == 0 && in.stopped() {
			break
		}
		made++
		resp, err := client.Get(url)
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case *closeBodies:
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			ok++
		default:
			open = append(open, resp)
			ok++
		}
		if made == *requests {
			break
		}
		select {
		case <-tick.C:
		case <-until:
		}
	}
	return map[string]any{
		"dials":       s.total(),
		"requests":    made,
		"ok":          ok,
		"bodies_open": len(open),
		"errors":      errs,
	}
}

// pool runs database/sql over the line protocol, capped at -max open (and
// idle) connections, with workers querying in a loop, one more every
// -ramp up to -workers, until told to stop.
func pool(args []string, in *stdin) any {
	fs := flag.NewFlagSet("pool", flag.ExitOnError)
	maxOpen := fs.Int("max", 8, "the pool's cap (SetMaxOpenConns, SetMaxIdleConns)")
	workers := fs.Int("workers", 40, "workers at most")
	ramp := fs.Duration("ramp", time.Second, "time between starting workers")
	_ = fs.Parse(args)
	s := newSockets()
	db := sql.OpenDB(&connector{addr: fs.Arg(0), dialer: s.dialer(5 * time.Second)})
	db.SetMaxOpenConns(*maxOpen)
	db.SetMaxIdleConns(*maxOpen)
	var queries, failed atomic.Int64
	var wg sync.WaitGroup
	started := 0
	tick := time.NewTicker(*ramp)
	defer tick.Stop()
	for !in.stopped() {
		if started < *workers {
			started++
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !in.stopped() {
					if _, err := db.ExecContext(context.Background(), "SELECT 1"); err != nil {
						failed.Add(1)
					} else {
						queries.Add(1)
					}
				}
			}()
		}
		select {
		case <-tick.C:
		case <-in.stop:
		}
	}
	wg.Wait()
	st := db.Stats()
	return map[string]any{
		"dials":      s.total(),
		"workers":    started,
		"queries":    queries.Load(),
		"failed":     failed.Load(),
		"max_open":   st.MaxOpenConnections,
		"open":       st.OpenConnections,
		"wait_count": st.WaitCount,
	}
}

// A database/sql driver for the line protocol: enough for Exec.
type connector struct {
	addr   string
	dialer *net.Dialer
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &lineConn{conn: conn, r: bufio.NewReader(conn)}, nil
}

func (c *connector) Driver() driver.Driver { return lineDriver{} }

type lineDriver struct{}

func (lineDriver) Open(string) (driver.Conn, error) {
	return nil, errors.New("use the connector")
}

type lineConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *lineConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("no prepared statements")
}

func (c *lineConn) Close() error { return c.conn.Close() }

func (c *lineConn) Begin() (driver.Tx, error) {
	return nil, errors.New("no transactions")
}

func (c *lineConn) ExecContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	if _, err := io.WriteString(c.conn, query+"\n"); err != nil {
		return nil, driver.ErrBadConn
	}
	if _, err := c.r.ReadString('\n'); err != nil {
		return nil, driver.ErrBadConn
	}
	return driver.RowsAffected(1), nil
}
