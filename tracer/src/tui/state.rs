//! What the user has chosen to look at: screen, selection, sort, filter,
//! pause, help, the last save message; and the history of the snapshots
//! seen. Changed only by [`ViewState::apply`], [`ViewState::type_filter`]
//! and `history.record`; read by the renderer.

use std::sync::Arc;

use super::{columns::Column, history::History, keys::Action};
use crate::{
    findings::{self, Finding},
    snapshot::{ProcessId, ProcessSnapshot, Snapshot},
};

/// Which full screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The process table with the findings panel.
    Processes,
    /// One process: remotes, connections, latency, recent events.
    Detail,
    /// Every finding, one selectable line each.
    Findings,
}

/// The outcome of the last save, shown in the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// Rows moved by PgUp/PgDn.
const PAGE: usize = 10;

#[derive(Debug, Clone)]
pub struct ViewState {
    pub screen: Screen,
    pub help: bool,
    /// Lines the help is scrolled down by.
    pub help_scroll: u16,
    /// The selected process; kept by identity so rows may reorder under it.
    pub selected: Option<ProcessId>,
    /// Index into the findings list on the findings screen.
    pub finding: usize,
    pub sort: Column,
    pub descending: bool,
    pub filter: String,
    /// Keys go to the filter text until Enter or Esc.
    pub editing_filter: bool,
    /// The snapshot frozen by `p`; `None` while live.
    pub paused: Option<Arc<Snapshot>>,
    pub status: Option<Status>,
    /// The last 10 minutes of the snapshots seen, paused or not.
    pub history: History,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            screen: Screen::Processes,
            help: false,
            help_scroll: 0,
            selected: None,
            finding: 0,
            sort: Column::Connects,
            descending: Column::Connects.descending_by_default(),
            filter: String::new(),
            editing_filter: false,
            paused: None,
            status: None,
            history: History::default(),
        }
    }
}

/// What the caller must do after an action; everything else is a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Write the shown snapshot to a CSV file.
    Save,
}

impl ViewState {
    /// The state at start, for snapshots that arrive every `refresh`.
    pub fn new(refresh: std::time::Duration) -> Self {
        Self {
            history: History::new(refresh),
            ..Self::default()
        }
    }

    /// The snapshot to show: the frozen one while paused, else `live`.
    pub fn shown<'a>(&'a self, live: &'a Arc<Snapshot>) -> &'a Arc<Snapshot> {
        self.paused.as_ref().unwrap_or(live)
    }

    /// The processes of the table, filtered and sorted.
    pub fn rows<'a>(&self, snapshot: &'a Snapshot) -> Vec<&'a ProcessSnapshot> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&ProcessSnapshot> = snapshot
            .processes
            .iter()
            .filter(|p| {
                needle.is_empty()
                    || p.comm.to_lowercase().contains(&needle)
                    || p.id.pid.to_string().starts_with(&needle)
            })
            .collect();
        rows.sort_by(|a, b| self.sort.compare(a, b, self.descending));
        rows
    }

    /// Index of the selected process in `rows`; the first row when the
    /// selected one is gone or none was chosen.
    pub fn selected_index(&self, rows: &[&ProcessSnapshot]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        Some(
            self.selected
                .and_then(|id| rows.iter().position(|p| p.id == id))
                .unwrap_or(0),
        )
    }

    /// The process the detail screen shows.
    pub fn selected_process<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a ProcessSnapshot> {
        let rows = self.rows(snapshot);
        self.selected_index(&rows).map(|i| rows[i])
    }

    /// Applies `action` against the shown snapshot `live` (or the paused one).
    pub fn apply(&mut self, action: Action, live: &Arc<Snapshot>) -> Effect {
        let shown = Arc::clone(self.shown(live));
        if self.help {
            // The help popup covers the screen: it scrolls, closes on ? or
            // Esc, and q still quits.
            match action {
                Action::Quit => return Effect::Quit,
                Action::Help | Action::Back => self.help = false,
                Action::Up => self.help_scroll = self.help_scroll.saturating_sub(1),
                Action::Down => self.help_scroll = self.help_scroll.saturating_add(1),
                Action::PageUp => self.help_scroll = self.help_scroll.saturating_sub(PAGE as u16),
                Action::PageDown => self.help_scroll = self.help_scroll.saturating_add(PAGE as u16),
                Action::Top => self.help_scroll = 0,
                _ => {}
            }
            return Effect::None;
        }
        match action {
            Action::Quit => return Effect::Quit,
            Action::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Action::Save => return Effect::Save,
            Action::Pause => {
                self.paused = match self.paused {
                    Some(_) => None,
                    None => Some(Arc::clone(live)),
                };
            }
            Action::Open => match self.screen {
                Screen::Processes => {
                    if self.selected_process(&shown).is_some() {
                        self.pin_selection(&shown);
                        self.screen = Screen::Detail;
                    }
                }
                Screen::Findings => {
                    let all = findings::findings(&shown);
                    if let Some(f) = all.get(self.finding.min(all.len().saturating_sub(1))) {
                        self.open_finding(f, &shown);
                    }
                }
                Screen::Detail => {}
            },
            Action::Back => match self.screen {
                Screen::Detail | Screen::Findings => self.screen = Screen::Processes,
                Screen::Processes => self.filter.clear(),
            },
            Action::Findings => {
                self.screen = match self.screen {
                    Screen::Findings => Screen::Processes,
                    _ => Screen::Findings,
                };
            }
            Action::Filter => {
                self.screen = Screen::Processes;
                self.editing_filter = true;
            }
            Action::SortNext | Action::SortPrev => {
                self.sort = if action == Action::SortNext {
                    self.sort.next()
                } else {
                    self.sort.prev()
                };
                self.descending = self.sort.descending_by_default();
            }
            Action::SortReverse => self.descending = !self.descending,
            Action::Up => self.step(&shown, -1),
            Action::Down => self.step(&shown, 1),
            Action::PageUp => self.step(&shown, -(PAGE as isize)),
            Action::PageDown => self.step(&shown, PAGE as isize),
            Action::Top => self.step(&shown, isize::MIN),
            Action::Bottom => self.step(&shown, isize::MAX),
        }
        Effect::None
    }

    /// A key typed while editing the filter: text, Backspace, Enter (keep),
    /// Esc (clear).
    pub fn type_filter(&mut self, key: FilterKey) {
        match key {
            FilterKey::Char(c) => self.filter.push(c),
            FilterKey::Backspace => {
                self.filter.pop();
            }
            FilterKey::Done => self.editing_filter = false,
            FilterKey::Cancel => {
                self.filter.clear();
                self.editing_filter = false;
            }
        }
    }

    /// Remembers the row under the cursor so a reorder does not move it.
    fn pin_selection(&mut self, snapshot: &Snapshot) {
        self.selected = self.selected_process(snapshot).map(|p| p.id);
    }

    fn open_finding(&mut self, f: &Finding, snapshot: &Snapshot) {
        let Some(p) = snapshot.processes.iter().find(|p| p.id.pid == f.pid) else {
            return;
        };
        // The process may be hidden by the filter.
        if !self.rows(snapshot).iter().any(|r| r.id == p.id) {
            self.filter.clear();
        }
        self.selected = Some(p.id);
        self.screen = Screen::Detail;
    }

    /// Moves the selection by `delta` rows (clamped) on the current list.
    fn step(&mut self, snapshot: &Snapshot, delta: isize) {
        if self.screen == Screen::Findings {
            let n = findings::findings(snapshot).len();
            self.finding = clamp_step(self.finding.min(n.saturating_sub(1)), delta, n);
            return;
        }
        let rows = self.rows(snapshot);
        if let Some(i) = self.selected_index(&rows) {
            self.selected = Some(rows[clamp_step(i, delta, rows.len())].id);
        }
    }

    #[cfg(test)]
    fn selected_pid(&self, snapshot: &Snapshot) -> Option<u32> {
        self.selected_process(snapshot).map(|p| p.id.pid)
    }
}

/// Keys of the filter editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterKey {
    Char(char),
    Backspace,
    Done,
    Cancel,
}

fn clamp_step(i: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let target = (i as isize).saturating_add(delta);
    target.clamp(0, len as isize - 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn live() -> Arc<Snapshot> {
        Arc::new(fixtures::misbehaving())
    }

    #[test]
    fn moves_within_the_sorted_rows() {
        let s = live();
        let mut v = ViewState::default();
        // By connects, most first: proxy 2210, billing 64, fetcher 6, cron-job 3.
        assert_eq!(v.selected_pid(&s), Some(1187));
        v.apply(Action::Down, &s);
        assert_eq!(v.selected_pid(&s), Some(2044));
        v.apply(Action::Bottom, &s);
        assert_eq!(v.selected_pid(&s), Some(2990));
        v.apply(Action::Down, &s);
        assert_eq!(v.selected_pid(&s), Some(2990), "clamped");
        v.apply(Action::Top, &s);
        assert_eq!(v.selected_pid(&s), Some(1187));
        v.apply(Action::Up, &s);
        assert_eq!(v.selected_pid(&s), Some(1187), "clamped");
    }

    #[test]
    fn selection_follows_the_process_when_rows_reorder() {
        let s = live();
        let mut v = ViewState::default();
        v.apply(Action::Down, &s);
        assert_eq!(v.selected_pid(&s), Some(2044));
        v.apply(Action::SortReverse, &s);
        assert_eq!(v.selected_pid(&s), Some(2044));
        assert_eq!(v.rows(&s)[0].id.pid, 2990);
    }

    #[test]
    fn sorting_cycles_columns_with_their_natural_order() {
        let s = live();
        let mut v = ViewState::default();
        // CONN, back past CONTAINER and COMMAND.
        for _ in 0..3 {
            v.apply(Action::SortPrev, &s);
        }
        assert_eq!(v.sort, Column::Pid);
        assert!(!v.descending);
        v.apply(Action::SortNext, &s);
        assert_eq!((v.sort, v.descending), (Column::Comm, false));
        v.apply(Action::SortNext, &s);
        assert_eq!((v.sort, v.descending), (Column::Container, false));
        v.apply(Action::SortNext, &s);
        assert_eq!((v.sort, v.descending), (Column::Connects, true));
    }

    #[test]
    fn filter_by_command_or_pid() {
        let s = live();
        let mut v = ViewState::default();
        v.apply(Action::Filter, &s);
        assert!(v.editing_filter);
        for c in "BILL".chars() {
            v.type_filter(FilterKey::Char(c));
        }
        v.type_filter(FilterKey::Done);
        assert!(!v.editing_filter);
        let pids: Vec<u32> = v.rows(&s).iter().map(|p| p.id.pid).collect();
        assert_eq!(pids, vec![2044]);
        v.filter = "20".into();
        let pids: Vec<u32> = v.rows(&s).iter().map(|p| p.id.pid).collect();
        assert_eq!(pids, vec![2044, 2050]);
        v.type_filter(FilterKey::Backspace);
        assert_eq!(v.filter, "2");
        v.apply(Action::Back, &s);
        assert!(v.filter.is_empty(), "Esc clears the filter");
        v.apply(Action::Filter, &s);
        v.type_filter(FilterKey::Char('x'));
        v.type_filter(FilterKey::Cancel);
        assert!(v.filter.is_empty() && !v.editing_filter);
    }

    #[test]
    fn detail_in_and_out() {
        let s = live();
        let mut v = ViewState::default();
        v.apply(Action::Down, &s);
        assert_eq!(v.apply(Action::Open, &s), Effect::None);
        assert_eq!(v.screen, Screen::Detail);
        assert_eq!(v.selected_pid(&s), Some(2044));
        v.apply(Action::Down, &s);
        assert_eq!(v.selected_pid(&s), Some(2050), "↓ shows the next process");
        v.apply(Action::Back, &s);
        assert_eq!(v.screen, Screen::Processes);
    }

    #[test]
    fn a_finding_opens_its_process() {
        let s = live();
        let mut v = ViewState {
            filter: "proxy".into(),
            ..ViewState::default()
        };
        v.apply(Action::Findings, &s);
        assert_eq!(v.screen, Screen::Findings);
        // Findings: 1187 ×2, then 2044 (nothing listening).
        v.apply(Action::Down, &s);
        v.apply(Action::Down, &s);
        v.apply(Action::Open, &s);
        assert_eq!(v.screen, Screen::Detail);
        assert_eq!(v.selected_pid(&s), Some(2044));
        assert!(v.filter.is_empty(), "the filter hid it");
    }

    #[test]
    fn pause_freezes_the_snapshot() {
        let first = live();
        let mut v = ViewState::default();
        v.apply(Action::Pause, &first);
        let mut next = fixtures::misbehaving();
        next.processes.clear();
        let next = Arc::new(next);
        assert!(Arc::ptr_eq(v.shown(&next), &first));
        v.apply(Action::Pause, &next);
        assert!(Arc::ptr_eq(v.shown(&next), &next));
    }

    #[test]
    fn help_swallows_keys_but_quit() {
        let s = live();
        let mut v = ViewState::default();
        v.apply(Action::Help, &s);
        assert!(v.help);
        assert_eq!(v.apply(Action::Save, &s), Effect::None);
        assert_eq!(v.apply(Action::Down, &s), Effect::None);
        assert_eq!(v.selected_pid(&s), Some(1187));
        v.apply(Action::Back, &s);
        assert!(!v.help);
        assert_eq!(v.apply(Action::Save, &s), Effect::Save);
        v.apply(Action::Help, &s);
        assert_eq!(v.apply(Action::Quit, &s), Effect::Quit);
    }

    #[test]
    fn empty_snapshot_is_harmless() {
        let s = Arc::new(fixtures::snapshot(Vec::new()));
        let mut v = ViewState::default();
        for a in [
            Action::Down,
            Action::Bottom,
            Action::Open,
            Action::Findings,
            Action::Down,
            Action::Open,
        ] {
            v.apply(a, &s);
        }
        assert_eq!(v.screen, Screen::Findings);
    }
}
