//! The run loop on a `TestBackend` with scripted input.

use std::{cell::RefCell, rc::Rc, time::Duration};

use ratatui::{
    backend::TestBackend,
    crossterm::event::{KeyEvent, KeyModifiers},
};

use super::*;
use crate::fixtures;

fn ctx() -> ViewContext {
    ViewContext {
        host: "test".into(),
        kernel: "6.18.0".into(),
        hooks: "tracepoint sock:inet_sock_set_state".into(),
        scope: "all processes".into(),
        log_path: None,
        refresh: std::time::Duration::from_secs(1),
    }
}

fn key(c: char) -> io::Result<Event> {
    Ok(Event::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::NONE,
    )))
}

fn screen(t: &Terminal<TestBackend>) -> String {
    t.backend().to_string()
}

#[tokio::test]
async fn save_then_quit() {
    let (_tx, rx) = watch::channel(Arc::new(fixtures::misbehaving()));
    let (keys, mut input) = mpsc::unbounded_channel();
    let saved: Rc<RefCell<Vec<usize>>> = Rc::default();
    let record = Rc::clone(&saved);
    let save: SaveFn = Box::new(move |s: &Snapshot| {
        record.borrow_mut().push(s.processes.len());
        Ok(PathBuf::from("/tmp/snap.csv"))
    });
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    keys.send(key('s')).unwrap();
    keys.send(key('?')).unwrap();
    keys.send(key('?')).unwrap();
    keys.send(key('q')).unwrap();
    keys.send(key('j')).unwrap(); // never read
    let stop = std::future::pending();
    run_with(&mut t, &ctx(), rx, &mut input, save, stop)
        .await
        .unwrap();
    assert_eq!(*saved.borrow(), vec![4]);
    assert!(screen(&t).contains("saved /tmp/snap.csv"), "{}", screen(&t));
    assert_eq!(
        input.try_recv().ok().map(|e| e.is_ok()),
        Some(true),
        "q ended the loop"
    );
}

#[tokio::test]
async fn a_failed_save_is_shown_not_fatal() {
    let (_tx, rx) = watch::channel(Arc::new(fixtures::healthy()));
    let (keys, mut input) = mpsc::unbounded_channel();
    let save: SaveFn = Box::new(|_: &Snapshot| anyhow::bail!("disk full"));
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    keys.send(key('s')).unwrap();
    keys.send(Ok(Event::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    ))))
    .unwrap();
    run_with(&mut t, &ctx(), rx, &mut input, save, std::future::pending())
        .await
        .unwrap();
    assert!(
        screen(&t).contains("saving failed: disk full"),
        "{}",
        screen(&t)
    );
}

#[tokio::test]
async fn new_snapshots_redraw_and_pause_holds_the_old_one() {
    let (tx, rx) = watch::channel(Arc::new(fixtures::healthy()));
    let (keys, mut input) = mpsc::unbounded_channel();
    let mut t = Terminal::new(TestBackend::new(100, 24)).unwrap();
    let save: SaveFn = Box::new(|_: &Snapshot| Ok(PathBuf::new()));
    let script = async move {
        tokio::task::yield_now().await;
        tx.send(Arc::new(fixtures::misbehaving())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        keys.send(key('p')).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(Arc::new(fixtures::healthy())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Dropping the sender ends the loop, like the end of tracing.
        drop(tx);
        keys
    };
    let c = ctx();
    let (result, _keys) = tokio::join!(
        run_with(&mut t, &c, rx, &mut input, save, std::future::pending()),
        script
    );
    result.unwrap();
    let text = screen(&t);
    assert!(
        text.contains("PAUSED") && text.contains("billing"),
        "{text}"
    );
}

#[tokio::test]
async fn filter_typing_takes_every_key() {
    let (_tx, rx) = watch::channel(Arc::new(fixtures::misbehaving()));
    let (keys, mut input) = mpsc::unbounded_channel();
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    for c in "/qs".chars() {
        keys.send(key(c)).unwrap();
    }
    // Typed into the filter, not quit or saved; then the stop future ends it.
    let save: SaveFn = Box::new(|_: &Snapshot| panic!("s was typed into the filter"));
    let stop = tokio::time::sleep(Duration::from_millis(50));
    run_with(&mut t, &ctx(), rx, &mut input, save, stop)
        .await
        .unwrap();
    assert!(screen(&t).contains("filter: qs"), "{}", screen(&t));
}
