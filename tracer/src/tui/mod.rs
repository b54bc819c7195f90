//! The live view: a full-screen terminal UI over the latest snapshot.
//!
//! [`run`] owns the terminal while the view is up and returns when the user
//! quits (or on SIGINT, SIGTERM, SIGHUP), leaving the terminal as it found it.
//! It reads snapshots only, through a `watch` channel the tracing session
//! fills; rendering ([`render`]) is a pure function of the view state, the
//! shown snapshot and the session context; the view state keeps the history
//! of the snapshots seen (`history`). [`run_with`] takes any ratatui
//! backend and event source, so the loop is tested without a terminal.

mod columns;
mod history;
mod keys;
pub mod logging;
mod render;
mod state;
mod terminal;

use std::{
    future::Future,
    io::{self, IsTerminal as _},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use ratatui::{
    Terminal,
    backend::Backend,
    crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers},
};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

pub use self::terminal::TerminalError;
use self::{
    state::{Effect, FilterKey, Status, ViewState},
    terminal::{Input, TerminalGuard},
};
use crate::snapshot::Snapshot;

/// What the view says about the session, fixed for its whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewContext {
    pub host: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// The hooks in use, e.g. `tracepoint sock:inet_sock_set_state, …`.
    pub hooks: String,
    /// What is traced: `all processes`, `pid 1234`.
    pub scope: String,
    /// Where log messages go while the view runs.
    pub log_path: Option<PathBuf>,
    /// How often a snapshot arrives: the history holds 10 minutes of them.
    pub refresh: Duration,
}

impl ViewContext {
    /// Host name, kernel release and log path of this machine and run.
    pub fn new(hooks: String, scope: String, refresh: Duration) -> Self {
        let host = crate::system::hostname();
        Self {
            host,
            kernel: crate::system::kernel_release(),
            hooks,
            scope,
            log_path: logging::path(),
            refresh,
        }
    }
}

/// Refuses, with a message that suggests `--headless`, when standard output
/// is not a terminal.
pub fn require_terminal() -> Result<(), TerminalError> {
    if io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(TerminalError::NotATerminal)
    }
}

/// Writes a snapshot as CSV and says where.
pub type SaveFn = Box<dyn FnMut(&Snapshot) -> anyhow::Result<PathBuf>>;

/// Shows the live view on this process's terminal until the user quits or a
/// stop signal arrives. Refuses, before touching the terminal, when standard
/// output is not a terminal.
pub async fn run(
    ctx: ViewContext,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    save: SaveFn,
) -> anyhow::Result<()> {
    let stop = stop_signal()?;
    let mut guard = TerminalGuard::enter()?;
    let mut input = Input::spawn()?;
    let result = run_with(
        &mut guard.terminal,
        &ctx,
        snapshots,
        &mut input.events,
        save,
        stop,
    )
    .await;
    drop(input);
    if let Err(err) = terminal::restore() {
        if matches!(err.raw_os_error(), Some(libc::EIO | libc::ENXIO)) {
            // The terminal is gone (hung up): nothing is left to restore, and
            // ratatui's own drop would try to print about it on that terminal.
            std::mem::forget(guard);
            return result;
        }
        return Err(err).context("restoring the terminal");
    }
    drop(guard);
    result
}

/// Resolves on the first SIGINT, SIGTERM or SIGHUP. (In raw mode Ctrl-C is a
/// key, not SIGINT; the signal still comes from `kill`.)
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    })
}

/// The run loop on any backend: draw, then wait for a snapshot, an input
/// event or `stop`. Returns when the user quits, `stop` resolves, or the
/// snapshot sender is gone (tracing ended).
pub async fn run_with<B>(
    terminal: &mut Terminal<B>,
    ctx: &ViewContext,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    input: &mut mpsc::UnboundedReceiver<io::Result<Event>>,
    mut save: SaveFn,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    let mut state = ViewState::new(ctx.refresh);
    tokio::pin!(stop);
    loop {
        let live = Arc::clone(&snapshots.borrow_and_update());
        // Once per snapshot, paused or not: the history goes on.
        state.history.record(&live);
        terminal
            .draw(|frame| render::render(&state, state.shown(&live), ctx, frame))
            .context("drawing the live view")?;
        tokio::select! {
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            event = input.recv() => match event {
                None => return Ok(()),
                Some(Err(e)) => return Err(e).context("reading keys from the terminal"),
                Some(Ok(Event::Key(key))) => {
                    if on_key(&mut state, key, &live, &mut save) == Effect::Quit {
                        return Ok(());
                    }
                }
                // A resize is handled by the next draw; other events are ignored.
                Some(Ok(_)) => {}
            },
            () = &mut stop => return Ok(()),
        }
    }
}

/// Applies one key to the view state; saves when asked.
fn on_key(state: &mut ViewState, key: KeyEvent, live: &Arc<Snapshot>, save: &mut SaveFn) -> Effect {
    if state.editing_filter {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => return Effect::Quit,
            KeyCode::Char(c) if !ctrl => state.type_filter(FilterKey::Char(c)),
            KeyCode::Backspace => state.type_filter(FilterKey::Backspace),
            KeyCode::Enter => state.type_filter(FilterKey::Done),
            KeyCode::Esc => state.type_filter(FilterKey::Cancel),
            _ => {}
        }
        return Effect::None;
    }
    let Some(action) = keys::action(&key) else {
        return Effect::None;
    };
    let effect = state.apply(action, live);
    if effect == Effect::Save {
        let shown = Arc::clone(state.shown(live));
        state.status = Some(match save(&shown) {
            Ok(path) => Status {
                text: format!("saved {}", path.display()),
                error: false,
            },
            Err(e) => Status {
                text: format!("saving failed: {e:#}"),
                error: true,
            },
        });
    }
    effect
}

#[cfg(test)]
mod tests;
