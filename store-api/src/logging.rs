//! Log lines on stderr, as text or JSON lines, filtered by `LOG_LEVEL`.
//!
//! Every request logs one line. Written straight to stderr that is a system call per line on
//! the request's own thread; here lines go into a buffer instead, and one thread writes them out
//! in batches (as many as arrived while it wrote the last batch). Nothing is dropped: when the
//! buffer holds [`MAX_BUFFERED`] bytes that stderr has not taken yet, a logging thread waits for
//! room, as it would have waited on stderr itself. [`LogGuard`] writes out what is left when the
//! process ends.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Bytes waiting for stderr before logging threads wait.
pub const MAX_BUFFERED: usize = 4 * 1024 * 1024;

/// Installs the global subscriber; later calls (tests) are ignored. Keep the guard until the
/// process ends: dropping it writes out the buffer.
pub fn init(format: LogFormat, filter: Targets) -> LogGuard {
    let sink = Arc::new(Sink::default());
    let writer = BufferedStderr { sink: sink.clone() };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
    if installed.is_err() {
        return LogGuard {
            sink,
            flusher: None,
        };
    }
    let flusher = {
        let sink = sink.clone();
        std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || sink.write_out(&mut std::io::stderr()))
            .ok()
    };
    if flusher.is_none() {
        // No thread: lines are written by the logging threads themselves.
        sink.lock().direct = true;
    }
    LogGuard { sink, flusher }
}

#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
    closed: bool,
    direct: bool,
}

#[derive(Default)]
struct Sink {
    buffer: Mutex<Buffer>,
    /// Signalled when lines arrive, when room was made, and at the end.
    changed: Condvar,
}

impl Sink {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        match self.buffer.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Buffer>) -> MutexGuard<'a, Buffer> {
        match self.changed.wait(guard) {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn push(&self, line: &[u8]) -> std::io::Result<()> {
        let mut buffer = self.lock();
        if buffer.direct || buffer.closed {
            drop(buffer);
            return std::io::stderr().write_all(line);
        }
        while !buffer.data.is_empty() && buffer.data.len() + line.len() > MAX_BUFFERED {
            buffer = self.wait(buffer);
            if buffer.closed {
                drop(buffer);
                return std::io::stderr().write_all(line);
            }
        }
        let was_empty = buffer.data.is_empty();
        buffer.data.extend_from_slice(line);
        drop(buffer);
        if was_empty {
            self.changed.notify_all();
        }
        Ok(())
    }

    /// The writer thread: batches out until closed and empty.
    fn write_out(&self, out: &mut impl Write) {
        let mut spare = Vec::new();
        loop {
            let mut buffer = self.lock();
            while buffer.data.is_empty() && !buffer.closed {
                buffer = self.wait(buffer);
            }
            if buffer.data.is_empty() && buffer.closed {
                return;
            }
            std::mem::swap(&mut buffer.data, &mut spare);
            drop(buffer);
            // Room again for whoever waited.
            self.changed.notify_all();
            let _ = out.write_all(&spare);
            let _ = out.flush();
            spare.clear();
            if spare.capacity() > MAX_BUFFERED {
                spare = Vec::new();
            }
        }
    }
}

/// The `MakeWriter` of the fmt layer: each event arrives as one formatted line.
struct BufferedStderr {
    sink: Arc<Sink>,
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { sink: &self.sink }
    }
}

struct LineWriter<'a> {
    sink: &'a Sink,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.sink.push(bytes)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes out the buffered lines when dropped (at the end of `main`).
pub struct LogGuard {
    sink: Arc<Sink>,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.sink.lock().closed = true;
        self.sink.changed.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_whole_and_in_order() {
        let sink = Arc::new(Sink::default());
        let writer = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                sink.write_out(&mut out);
                out
            })
        };
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for n in 0..500 {
                        sink.push(format!("thread {t} line {n}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        sink.lock().closed = true;
        sink.changed.notify_all();
        let out = String::from_utf8(writer.join().unwrap()).unwrap();
        assert_eq!(out.lines().count(), 2000);
        for t in 0..4 {
            let numbers: Vec<usize> = out
                .lines()
                .filter(|line| line.starts_with(&format!("thread {t} ")))
                .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
                .collect();
            assert_eq!(numbers, (0..500).collect::<Vec<_>>());
        }
    }
}
