// dnsclient looks names up with Go's own resolver (the one Go services use
// with CGO disabled: a connected UDP socket per query, A and AAAA in
// parallel) and prints how each ended, one line per name:
//
//	NAME ok ADDR...
//	NAME notfound     (NXDOMAIN: "no such host")
//	NAME timeout      (no answer: "i/o timeout")
//	NAME error TEXT   (anything else, e.g. SERVFAIL: "server misbehaving")
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	resolver := &net.Resolver{PreferGo: true}
	for _, name := range os.Args[1:] {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		addrs, err := resolver.LookupHost(ctx, name)
		cancel()
		var dnsErr *net.DNSError
		switch {
		case err == nil:
			fmt.Printf("%s ok %s\n", name, strings.Join(addrs, " "))
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			fmt.Printf("%s notfound\n", name)
		case errors.As(err, &dnsErr) && dnsErr.IsTimeout:
			fmt.Printf("%s timeout\n", name)
		default:
			fmt.Printf("%s error %v\n", name, err)
		}
	}
}
