//! The live view in a real terminal: tracer runs under tmux against real
//! traffic in a private network namespace, a healthy client next to a process
//! whose connects are refused and a listener that leaks CLOSE_WAIT sockets.
//! The test reads the screen, types keys like a user, and checks the exit
//! status and that the terminal was given back.

mod support;

use std::{thread, time::Duration};

use support::{Netns, Peer, TRACER, Tmux, kernel_tests_enabled, tool_available};

const HOST: &str = "127.0.0.1";
const WAIT: Duration = Duration::from_secs(30);
/// Connects to a leaking listener: above the CLOSE_WAIT finding's threshold (10).
const LEAKED: usize = 12;

/// The cells of the table row of `pid`, if it is on screen.
fn row(screen: &str, pid: u32) -> Option<Vec<String>> {
    let pid = pid.to_string();
    screen
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&pid))
}

/// The CONN column (third) of `pid`'s row.
fn connects(screen: &str, pid: u32) -> Option<String> {
    row(screen, pid).and_then(|cells| cells.get(2).cloned())
}

#[test]
fn live_view_in_a_real_terminal() {
    if !kernel_tests_enabled() || !tool_available("tmux") {
        return;
    }
    let ns = Netns::new("tui");
    let (listener, port) = Peer::listen_in(&ns.name, HOST);
    let mut client = Peer::spawn_in(Some(&ns.name), &["connect", HOST, &port.to_string()]);
    let (leaky, leak_port) = Peer::leaking_listener_in(&ns.name, HOST);
    let mut leak_client =
        Peer::spawn_in(Some(&ns.name), &["connect", HOST, &leak_port.to_string()]);
    let mut refused = Peer::spawn_in(Some(&ns.name), &["connect", HOST, "9"]);
    let dir = tempfile::tempdir().expect("temporary directory");

    let mut command = format!("cd '{}' && {TRACER}", dir.path().display());
    for p in [&listener, &client, &leaky, &leak_client, &refused] {
        command += &format!(" --pid {}", p.pid());
    }
    // After tracer: its exit status, and whether the terminal is back in
    // cooked mode (canonical input, echo), as a shell expects it.
    let script = format!(
        "{command}; s=$?; printf '\\ntracer-exit=%s\\n' \"$s\"; \
         if stty -a | tr ' ;' '\\n\\n' | grep -qx icanon && stty -a | tr ' ;' '\\n\\n' | grep -qx echo; \
         then echo terminal-cooked; fi; echo shell-checked; sleep 600"
    );
    let tmux = Tmux::start("tui", 100, 30, &script);

    // The view is up once tracer has attached; only then make traffic.
    tmux.wait_for("the live view", WAIT, || {}, |s| s.contains("tracer  up"));
    for _ in 0..LEAKED {
        leak_client
            .connect_once()
            .expect("connect to the leaking listener");
    }
    for _ in 0..5 {
        assert_eq!(refused.connect_once(), Err(111), "port 9 refuses");
    }
    let client_pid = client.pid();
    let screen = tmux.wait_for(
        "rows with counts and the findings",
        WAIT,
        || {
            client.connect_once().expect("healthy connect");
        },
        |s| {
            connects(s, client_pid).is_some_and(|c| c != "0")
                && s.contains("nothing listening there")
                && s.contains("not closing connections its peers closed")
        },
    );
    println!("main screen:\n{screen}");
    assert!(screen.contains("dropped") && screen.contains("unattributed"));
    assert!(screen.contains(&format!("pid {}", listener.pid())), "scope");
    let refused_row = row(&screen, refused.pid()).expect("refused client's row");
    assert_eq!(refused_row[4], "5", "FAIL column: {refused_row:?}");

    // Resizing redraws at the new size: 80×24 keeps the rows, 40×10 says it
    // is too small.
    tmux.resize(80, 24);
    tmux.wait_for(
        "the view at 80×24",
        WAIT,
        || {},
        |s| s.lines().all(|l| l.chars().count() <= 80) && row(s, client_pid).is_some(),
    );
    tmux.resize(40, 10);
    tmux.wait_for(
        "the too-small notice",
        WAIT,
        || {},
        |s| s.contains("terminal too small"),
    );
    tmux.resize(100, 30);
    tmux.wait_for(
        "the view at 100×30",
        WAIT,
        || {},
        |s| s.contains("nothing listening there") && row(s, client_pid).is_some(),
    );

    // Filter down to the refused client, open it, come back.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &refused.pid().to_string()]);
    tmux.keys(&["Enter", "Enter"]);
    let detail = tmux.wait_for(
        "the detail of the refused client",
        WAIT,
        || {},
        |s| s.contains("Remote endpoints") && s.contains("127.0.0.1:9"),
    );
    println!("detail of the refused client:\n{detail}");
    assert!(detail.contains("5 refused"), "{detail}");
    // One Esc at a time: two ESC bytes in a row read as one Alt+Esc.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the table", WAIT, || {}, |s| s.contains("Processes 1 of 5"));
    tmux.keys(&["Escape"]);
    tmux.wait_for(
        "the main screen again, unfiltered",
        WAIT,
        || {},
        |s| row(s, client.pid()).is_some() && row(s, refused.pid()).is_some(),
    );

    // s: a CSV snapshot, its path in the footer.
    tmux.keys(&["s"]);
    let screen = tmux.wait_for("the saved path", WAIT, || {}, |s| s.contains("saved /"));
    let path = screen
        .split("saved ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("path after `saved`")
        .to_owned();
    assert!(
        path.starts_with(&dir.path().display().to_string()),
        "{path}"
    );
    let csv = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = csv.lines().next().expect("header");
    assert!(
        header.starts_with("timestamp,pid,comm,connects,connect_ok,connect_refused,"),
        "{header}"
    );
    assert!(
        csv.lines()
            .any(|l| l.split(',').nth(1) == Some(&client.pid().to_string())),
        "{csv}"
    );

    // ?: the help, closed again by ?.
    tmux.keys(&["?"]);
    tmux.wait_for(
        "the help with the log file",
        WAIT,
        || {},
        |s| s.contains("show or hide this help") && s.contains("Log messages go to"),
    );
    tmux.keys(&["?"]);
    tmux.wait_for(
        "the help to close",
        WAIT,
        || {},
        |s| !s.contains("show or hide this help"),
    );

    // p: the numbers stop moving until p again.
    tmux.keys(&["p"]);
    let paused = tmux.wait_for("PAUSED", WAIT, || {}, |s| s.contains("PAUSED"));
    let frozen = connects(&paused, client.pid()).expect("client row");
    for _ in 0..3 {
        client.connect_once().expect("healthy connect");
    }
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(connects(&tmux.screen(), client.pid()), Some(frozen.clone()));
    tmux.keys(&["p"]);
    tmux.wait_for(
        "the view to move again",
        WAIT,
        || {},
        |s| !s.contains("PAUSED") && connects(s, client.pid()).is_some_and(|c| c != frozen),
    );

    // q: tracer exits 0 and the shell gets a normal terminal back.
    tmux.keys(&["q"]);
    let after = tmux.wait_for(
        "tracer to exit",
        WAIT,
        || {},
        // The shell's checks after tracer, which are slow on an emulated VM.
        |s| s.contains("shell-checked"),
    );
    println!("after q:\n{after}");
    assert!(after.contains("tracer-exit=0"), "{after}");
    assert!(after.contains("terminal-cooked"), "{after}");
    assert_eq!(tmux.query("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(tmux.query("#{cursor_flag}"), "1", "cursor shown");
    assert!(
        after.contains("events read"),
        "the summary is on the main screen"
    );
}
