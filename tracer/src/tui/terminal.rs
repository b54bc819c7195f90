//! Entering the terminal's full-screen mode and leaving it on every way out:
//! a normal return and an error (the guard's `Drop`), a panic (the panic
//! hook), a signal (the run loop returns, then `Drop`). Leaving is idempotent,
//! so the hook and `Drop` may both run.

use std::{
    io::{self, Stdout, stdout},
    sync::{
        Once,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor, event, execute,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
    },
};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error(
        "the live view needs a terminal, but standard output is not one; \
         run with --headless (for example `tracer --headless --csv out.csv`)"
    )]
    NotATerminal,
    #[error("cannot set up the terminal for the live view: {0}")]
    Setup(io::Error),
    #[error("cannot start the keyboard reader: {0}")]
    Input(io::Error),
}

/// Whether the terminal is in full-screen mode now.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was: raw mode off, main screen, cursor shown.
/// Does nothing when the live view is not on screen.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = terminal::disable_raw_mode();
    let screen = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
    raw.and(screen)
}

/// Restores the terminal before the default hook prints the panic message, so
/// the message lands on a usable screen.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            previous(info);
        }));
    });
}

/// The terminal in full-screen mode; leaving it (drop) restores it.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    /// Refuses when standard output is not a terminal.
    pub fn enter() -> Result<Self, TerminalError> {
        super::require_terminal()?;
        install_panic_hook();
        terminal::enable_raw_mode().map_err(TerminalError::Setup)?;
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = execute!(stdout(), EnterAlternateScreen, cursor::Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(stdout())));
        match setup {
            Ok(terminal) => Ok(Self { terminal }),
            Err(e) => {
                let _ = restore();
                Err(TerminalError::Setup(e))
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Terminal events read on their own thread (crossterm's reader blocks) and
/// handed to the async run loop.
pub struct Input {
    pub events: mpsc::UnboundedReceiver<io::Result<event::Event>>,
    thread: Option<thread::JoinHandle<()>>,
    /// Disconnects when the reader thread has ended.
    done: std::sync::mpsc::Receiver<()>,
}

/// How long the reader waits for input before checking whether the view is
/// gone.
const POLL: Duration = Duration::from_millis(100);

impl Input {
    pub fn spawn() -> Result<Self, TerminalError> {
        let (tx, events) = mpsc::unbounded_channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("tracer-input".into())
            .spawn(move || {
                // Dropped when the thread ends, which `Drop` waits for.
                let _finished = done_tx;
                loop {
                    match event::poll(POLL) {
                        Ok(true) => {
                            let ev = event::read();
                            let failed = ev.is_err();
                            if tx.send(ev).is_err() || failed {
                                return;
                            }
                        }
                        Ok(false) if tx.is_closed() => return,
                        Ok(false) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .map_err(TerminalError::Input)?;
        Ok(Self {
            events,
            thread: Some(thread),
            done,
        })
    }
}

impl Drop for Input {
    /// Stops the reader so it takes no keystrokes meant for the shell. On a
    /// hung-up terminal the reader may never return (every read is an
    /// immediate end of file): it is then left behind, as tracer is exiting.
    fn drop(&mut self) {
        self.events.close();
        let ended = matches!(
            self.done.recv_timeout(POLL * 3),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
        if let Some(t) = self.thread.take().filter(|_| ended) {
            let _ = t.join();
        }
    }
}
