//! The one key table. The key handler looks keys up here, the help popup lists
//! every entry and the footer shows the short ones, so the three cannot drift
//! apart (a test checks that they agree).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Save,
    Pause,
    Open,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    SortPrev,
    SortNext,
    SortReverse,
    Filter,
    Findings,
}

/// One entry of the key table.
#[derive(Debug)]
pub struct Binding {
    pub action: Action,
    /// The keys, first the one the footer shows.
    pub keys: &'static [Key],
    /// The line in the help popup.
    pub help: &'static str,
    /// The word in the footer; `None` keeps the entry out of the footer.
    pub footer: Option<&'static str>,
}

/// A key with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

const fn key(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::NONE,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        modifiers: KeyModifiers::CONTROL,
    }
}

const fn special(code: KeyCode) -> Key {
    Key {
        code,
        modifiers: KeyModifiers::NONE,
    }
}

/// Every key the live view knows, in the order the help lists them.
pub const BINDINGS: &[Binding] = &[
    Binding {
        action: Action::Quit,
        keys: &[key('q'), ctrl('c')],
        help: "quit",
        footer: Some("quit"),
    },
    Binding {
        action: Action::Help,
        keys: &[key('?')],
        help: "show or hide this help",
        footer: Some("help"),
    },
    Binding {
        action: Action::Save,
        keys: &[key('s')],
        help: "save snapshot as CSV",
        footer: Some("save"),
    },
    Binding {
        action: Action::Pause,
        keys: &[key('p')],
        help: "pause / resume",
        footer: Some("pause"),
    },
    Binding {
        action: Action::Open,
        keys: &[special(KeyCode::Enter)],
        help: "open selected process",
        footer: Some("open"),
    },
    Binding {
        action: Action::Back,
        keys: &[special(KeyCode::Esc)],
        help: "back; clear filter",
        footer: None,
    },
    Binding {
        action: Action::Filter,
        keys: &[key('/')],
        help: "filter by name or pid",
        footer: Some("filter"),
    },
    Binding {
        action: Action::SortNext,
        keys: &[special(KeyCode::Right), key('>')],
        help: "sort by next column",
        footer: Some("sort"),
    },
    Binding {
        action: Action::SortPrev,
        keys: &[special(KeyCode::Left), key('<')],
        help: "sort by previous column",
        footer: None,
    },
    Binding {
        action: Action::SortReverse,
        keys: &[key('r')],
        help: "reverse sort order",
        footer: None,
    },
    Binding {
        action: Action::Findings,
        keys: &[key('f')],
        help: "all findings",
        footer: Some("findings"),
    },
    Binding {
        action: Action::Up,
        keys: &[special(KeyCode::Up), key('k')],
        help: "move up",
        footer: None,
    },
    Binding {
        action: Action::Down,
        keys: &[special(KeyCode::Down), key('j')],
        help: "move down",
        footer: None,
    },
    Binding {
        action: Action::PageUp,
        keys: &[special(KeyCode::PageUp)],
        help: "page up",
        footer: None,
    },
    Binding {
        action: Action::PageDown,
        keys: &[special(KeyCode::PageDown)],
        help: "page down",
        footer: None,
    },
    Binding {
        action: Action::Top,
        keys: &[special(KeyCode::Home), key('g')],
        help: "first row",
        footer: None,
    },
    Binding {
        action: Action::Bottom,
        keys: &[special(KeyCode::End), key('G')],
        help: "last row",
        footer: None,
    },
];

/// The action bound to `event`, if any. Key releases are ignored.
pub fn action(event: &KeyEvent) -> Option<Action> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    // Terminals report `G` as Shift+G or plain `G`; the character decides.
    let modifiers = event.modifiers - KeyModifiers::SHIFT;
    BINDINGS
        .iter()
        .find(|b| {
            b.keys
                .iter()
                .any(|k| k.code == event.code && k.modifiers == modifiers)
        })
        .map(|b| b.action)
}

/// How the help and the footer write a key: `q`, `Ctrl-C`, `Enter`, `↑`.
pub fn name(key: &Key) -> String {
    let base = match key.code {
        KeyCode::Char(c) if key.modifiers.contains(KeyModifiers::CONTROL) => {
            c.to_ascii_uppercase().to_string()
        }
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        other => format!("{other:?}"),
    };
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{base}")
    } else {
        base
    }
}

/// All keys of a binding: `q Ctrl-C`.
pub fn names(binding: &Binding) -> String {
    binding.keys.iter().map(name).collect::<Vec<_>>().join(" ")
}

/// The footer entries: (first key, word).
pub fn footer() -> impl Iterator<Item = (String, &'static str)> {
    BINDINGS
        .iter()
        .filter_map(|b| Some((name(b.keys.first()?), b.footer?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn every_key_leads_to_its_own_action() {
        for b in BINDINGS {
            assert!(!b.keys.is_empty(), "{:?} has no key", b.action);
            for k in b.keys {
                assert_eq!(
                    action(&press(k.code, k.modifiers)),
                    Some(b.action),
                    "{}",
                    name(k)
                );
            }
        }
    }

    #[test]
    fn no_key_or_action_is_bound_twice() {
        let keys: Vec<&Key> = BINDINGS.iter().flat_map(|b| b.keys).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[i + 1..].contains(k), "{} is bound twice", name(k));
        }
        for (i, b) in BINDINGS.iter().enumerate() {
            assert!(
                BINDINGS[i + 1..].iter().all(|o| o.action != b.action),
                "{:?} has two entries",
                b.action
            );
        }
    }

    #[test]
    fn the_documented_keys_are_there() {
        let of = |c, m| action(&press(c, m));
        assert_eq!(
            of(KeyCode::Char('q'), KeyModifiers::NONE),
            Some(Action::Quit)
        );
        assert_eq!(
            of(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Action::Quit)
        );
        assert_eq!(
            of(KeyCode::Char('?'), KeyModifiers::SHIFT),
            Some(Action::Help)
        );
        assert_eq!(
            of(KeyCode::Char('s'), KeyModifiers::NONE),
            Some(Action::Save)
        );
        assert_eq!(
            of(KeyCode::Char('p'), KeyModifiers::NONE),
            Some(Action::Pause)
        );
        assert_eq!(of(KeyCode::Enter, KeyModifiers::NONE), Some(Action::Open));
        assert_eq!(of(KeyCode::Esc, KeyModifiers::NONE), Some(Action::Back));
        assert_eq!(
            of(KeyCode::Char('/'), KeyModifiers::NONE),
            Some(Action::Filter)
        );
        assert_eq!(
            of(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Some(Action::Bottom)
        );
        assert_eq!(of(KeyCode::Char('c'), KeyModifiers::NONE), None);
        assert_eq!(of(KeyCode::Char('x'), KeyModifiers::NONE), None);
    }

    #[test]
    fn names_read_well() {
        assert_eq!(name(&ctrl('c')), "Ctrl-C");
        assert_eq!(names(&BINDINGS[0]), "q Ctrl-C");
        let footer: Vec<_> = footer().collect();
        assert_eq!(footer[0], ("q".to_owned(), "quit"));
        assert!(footer.iter().any(|f| f == &("→".to_owned(), "sort")));
    }
}
