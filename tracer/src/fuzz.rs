//! Property tests of every parser of input from outside tracer: ring-buffer
//! records, /proc files, tracepoint format files, BTF and CSV files to be
//! continued. For any input, each returns a value or an error (or a counted
//! decode error); none may panic.

use std::io::Write as _;

use proptest::prelude::*;

use crate::{
    aggregate::Aggregator,
    ebpf::{btf::Btf, format::Format, hooks},
    event::{Clock, TraceEvent},
    proc::{process, sockets},
    sink::{csv::CsvSink, json},
};

/// Text that looks like a /proc or tracefs file: digits, hex, separators and
/// the odd byte that is not ASCII, in lines.
fn procish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"([0-9A-Fa-f:()\[\] \t.,;=_a-z\x{ff}\x{fffd}-]{0,40}\n){0,12}")
        .expect("a valid pattern")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any record of any length decodes or is a decode error; whatever
    /// decodes can be rendered and aggregated.
    #[test]
    fn ring_buffer_records(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let clock = Clock::with_offset(i128::from(i64::MAX));
        if let Ok(ev) = TraceEvent::decode(&bytes, &clock) {
            let mut out = Vec::new();
            json::render(&ev, None, ev.old_state, None, &mut out);
            prop_assert!(out.ends_with(b"\n"));
            let mut agg = Aggregator::new(0);
            agg.observe(None, &ev);
        }
    }

    /// Records of every kind, with every other field random (family, states,
    /// flags and numbers included), in sequences on a few sockets: each
    /// decodes, renders and aggregates.
    #[test]
    fn records_of_every_kind(
        records in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), tracer_common::Event::SIZE), 1u32..=9, 0u64..4),
            1..40,
        )
    ) {
        let clock = Clock::with_offset(-i128::from(u64::MAX));
        let mut agg = Aggregator::new(0);
        for (bytes, kind, sk) in records {
            // SAFETY: Event is plain old data valid for any bytes of its size.
            let mut raw: tracer_common::Event =
                unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
            raw.kind = kind;
            raw.sk = sk;
            if let Ok(ev) = TraceEvent::from_raw(&raw, &clock) {
                let mut out = Vec::new();
                let waited = crate::aggregate::ConnectEnd {
                    after_us: ev.value,
                    syns: ev.pid,
                    race_lost: ev.sport % 2 == 0,
                };
                json::render(&ev, None, ev.new_state, Some(waited), &mut out);
                prop_assert!(out.ends_with(b"\n"));
                let owner = (ev.pid % 3 != 0).then_some(crate::proc::ProcessId {
                    pid: ev.pid % 3,
                    start_ticks: 1,
                });
                agg.observe(owner, &ev);
            }
        }
        let snapshot = agg.snapshot(std::time::SystemTime::now(), u64::MAX, Default::default());
        let _ = crate::findings::findings(&snapshot);
    }

    #[test]
    fn proc_net_tcp(text in procish()) {
        let _ = sockets::parse_table(&text);
    }

    #[test]
    fn proc_stat_and_limits(text in procish()) {
        let _ = process::parse_start_ticks(&text);
        let _ = process::parse_nofile_soft(&text);
        let _ = process::socket_inode(&text);
    }

    #[test]
    fn tracepoint_formats(text in procish(), field in "[a-z_]{1,8}") {
        if let Ok(format) = Format::parse("tcp", "fuzz", &text) {
            for hook in hooks::tracepoints() {
                let _ = format.offsets(hook.required, hook.optional);
            }
            let _ = format.offsets(&[], &[Box::leak(field.into_boxed_str())]);
        }
    }

    /// A BTF blob with a valid header and random types.
    #[test]
    fn btf(body in proptest::collection::vec(any::<u8>(), 0..400), lens in any::<[u16; 4]>()) {
        let mut data = Vec::new();
        data.extend_from_slice(&0xeb9f_u16.to_le_bytes());
        data.extend_from_slice(&[1, 0]);
        let [type_off, type_len, str_off, str_len] = lens.map(|n| u32::from(n % 512));
        for word in [24, type_off, type_len, str_off, str_len] {
            data.extend_from_slice(&word.to_le_bytes());
        }
        data.extend_from_slice(&body);
        if let Ok(btf) = Btf::parse(data) {
            let _ = btf.member_offset("sock", "__sk_common");
            let _ = crate::ebpf::btf::sock_offsets(&btf);
            let _ = crate::ebpf::btf::netns_offsets(&btf);
        }
    }

    /// Any bytes at all as BTF.
    #[test]
    fn btf_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(btf) = Btf::parse(data) {
            let _ = crate::ebpf::btf::sock_offsets(&btf);
        }
    }

    /// A file given to --csv holds anything: it is continued or refused.
    #[test]
    fn csv_continuation(prefix in any::<bool>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        if prefix {
            writeln!(file, "{}", crate::sink::csv::header()).expect("write");
        }
        file.write_all(&body).expect("write");
        let _ = CsvSink::open(file.path());
    }

    /// A capture and an events file given to `tracer report` hold anything:
    /// the report is written or refused with an error. Rows are tracer-like
    /// (the header, digits, commas, quotes, times) with random bytes mixed in.
    #[test]
    fn report_inputs(
        header in any::<bool>(),
        rows in proptest::string::string_regex(
            r#"(2024-01-01T00:00:0[0-9]Z,[0-9]{1,3},[a-z\x{ff}\x{fffd}"]{0,4}(,[0-9]{0,3}){32,34}\n){0,8}"#
        ).expect("a valid pattern"),
        noise in proptest::collection::vec(any::<u8>(), 0..60),
        events in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut capture = tempfile::NamedTempFile::new().expect("temp file");
        if header {
            writeln!(capture, "{}", crate::sink::csv::header()).expect("write");
        }
        capture.write_all(rows.as_bytes()).expect("write");
        capture.write_all(&noise).expect("write");
        let mut events_file = tempfile::NamedTempFile::new().expect("temp file");
        events_file.write_all(b"{\"event\":\"connect\",\"pid\":1,\"daddr\":\"10.0.0.1\",\"dport\":80,\"result\":\"refused\"}\n").expect("write");
        events_file.write_all(&events).expect("write");
        let args = crate::cli::ReportArgs {
            capture: capture.path().to_owned(),
            output: None,
            force: false,
            events: Some(events_file.path().to_owned()),
            top: 12,
        };
        let _ = crate::report::build(&args);
    }
}
