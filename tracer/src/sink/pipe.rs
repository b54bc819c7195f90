//! A writer that never blocks its caller: bytes go to a thread of their own
//! through a bounded queue. When whoever reads the output (a pipe, a slow
//! disk) falls behind and the queue is full, what does not fit is dropped and
//! counted, as the kernel counts the events the ring buffer cannot take:
//! the ring buffer keeps being drained and signals keep being handled.

use std::{
    io::{self, Write},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// Bytes gathered before they are handed to the writing thread.
const CHUNK: usize = 64 * 1024;
/// Chunks the queue holds: up to 16 MiB waiting for a slow reader.
const QUEUE: usize = 256;

/// What the writing thread reports back.
#[derive(Default)]
struct Shared {
    /// The first write that failed; the thread stops writing after it.
    error: Mutex<Option<io::Error>>,
    /// Lines handed over and not yet written.
    queued: AtomicU64,
}

/// A non-blocking line writer; see the module doc.
pub struct Pipe {
    tx: Option<SyncSender<Vec<u8>>>,
    pending: Vec<u8>,
    /// Lines dropped because the queue was full (or the writer had failed).
    unwritten: u64,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pipe {
    /// Starts the thread that writes to `out`.
    pub fn new(mut out: Box<dyn Write + Send>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tracer-events".into())
            .spawn(move || {
                // It only writes to a file already open: it needs nothing.
                let _ = crate::privileges::drop_all_on_this_thread();
                for chunk in rx {
                    if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
                        if let Ok(mut error) = thread_shared.error.lock() {
                            error.get_or_insert(e);
                        }
                        // Nothing more can be written; the sender sees the
                        // channel closed and counts the rest as unwritten.
                        return;
                    }
                    thread_shared
                        .queued
                        .fetch_sub(lines(&chunk), Ordering::Relaxed);
                }
            })
            .ok();
        Self {
            tx: Some(tx),
            pending: Vec::with_capacity(CHUNK),
            unwritten: 0,
            shared,
            thread,
        }
    }

    /// The buffer to append whole lines to; handed over by [`Self::flush`],
    /// or once it holds [`CHUNK`] bytes, by [`Self::lines_added`].
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.pending
    }

    /// Called after lines were appended to [`Self::buffer`].
    pub fn lines_added(&mut self) {
        if self.pending.len() >= CHUNK {
            self.flush();
        }
    }

    /// Hands what is buffered to the writing thread, without waiting: when
    /// its queue is full the lines are dropped and counted.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        let Some(tx) = &self.tx else {
            self.unwritten += lines(&chunk);
            return;
        };
        let n = lines(&chunk);
        // Counted as queued before the thread can subtract it.
        self.shared.queued.fetch_add(n, Ordering::Relaxed);
        if tx.try_send(chunk).is_err() {
            self.shared.queued.fetch_sub(n, Ordering::Relaxed);
            self.unwritten += n;
        }
    }

    /// Lines dropped so far because the output did not keep up.
    pub const fn unwritten(&self) -> u64 {
        self.unwritten
    }

    /// The first write that failed, once (e.g. the reader of a pipe exited).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.shared.error.lock().ok()?.take()
    }

    /// Hands over the rest and waits up to `patience` for it to be written.
    /// Returns whether the writer finished; what it did not write counts as
    /// unwritten (a writer still blocked is left to the process's exit).
    pub fn finish(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while !self.pending.is_empty() && self.tx.is_some() {
            let before = self.unwritten;
            let chunk = self.pending.clone();
            self.flush();
            let writer_gone = self.thread.as_ref().is_none_or(|t| t.is_finished());
            if self.unwritten == before || Instant::now() >= deadline || writer_gone {
                break;
            }
            // The queue was full: wait for room and try again.
            self.unwritten = before;
            self.pending = chunk;
            std::thread::sleep(Duration::from_millis(5));
        }
        // Closing the channel ends the thread once the queue is written.
        self.tx = None;
        let finished = match self.thread.take() {
            Some(thread) => loop {
                if thread.is_finished() {
                    break thread.join().is_ok();
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(5));
            },
            None => true,
        };
        // Whatever is still queued (or was in a write that failed) is lost.
        self.unwritten += self.shared.queued.swap(0, Ordering::Relaxed);
        finished
    }
}

fn lines(chunk: &[u8]) -> u64 {
    chunk.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::Receiver;

    use super::*;

    /// A writer that blocks until told to go on, as a pipe nobody reads does.
    struct Stalled(Receiver<()>, Arc<Mutex<Vec<u8>>>);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            self.1.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(pipe: &mut Pipe, n: usize) {
        writeln!(pipe.buffer(), "line {n}").unwrap();
        pipe.lines_added();
    }

    #[test]
    fn a_stalled_reader_never_blocks_and_drops_are_counted() {
        let (go, wait) = mpsc::channel();
        let out = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = Pipe::new(Box::new(Stalled(wait, Arc::clone(&out))));
        let started = Instant::now();
        for n in 0..(QUEUE + 8) {
            line(&mut pipe, n);
            pipe.flush();
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        // QUEUE chunks wait (and perhaps one is in the writer's hands): the
        // rest were dropped.
        assert!((7..=8).contains(&pipe.unwritten()), "{}", pipe.unwritten());
        assert!(
            !pipe.finish(Duration::from_millis(50)),
            "the reader is stalled"
        );
        // What was queued, and the chunk stuck in the write, count too: no
        // line reached the reader, and every one is counted.
        assert_eq!(pipe.unwritten(), (QUEUE + 8) as u64);
        drop(go);
    }

    #[test]
    fn everything_is_written_when_the_reader_keeps_up() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let (go, wait) = mpsc::channel();
        let mut pipe = Pipe::new(Box::new(Stalled(wait, Arc::clone(&out))));
        for _ in 0..10_000 {
            go.send(()).unwrap();
        }
        for n in 0..1000 {
            line(&mut pipe, n);
        }
        pipe.flush();
        assert!(pipe.finish(Duration::from_secs(5)));
        assert_eq!(pipe.unwritten(), 0);
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text.starts_with("line 0\n") && text.ends_with("line 999\n"));
    }

    #[test]
    fn a_failed_write_is_reported_once_and_the_rest_counted() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut pipe = Pipe::new(Box::new(Broken));
        line(&mut pipe, 1);
        pipe.flush();
        assert!(pipe.finish(Duration::from_secs(5)));
        let err = pipe.take_error().expect("the write failed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(pipe.unwritten(), 1);
        assert!(pipe.take_error().is_none());
    }
}
