//! Starts a throwaway PostgreSQL cluster for manual use (`make demo`).
//!
//! Prints `export PGHOST=…` lines for the superuser on stdout (so `eval "$(testpg)"`-style use or
//! reading them from a pipe works), then waits until stdin closes or SIGTERM/SIGINT arrives, and
//! stops the cluster and deletes its files. With `--ignore-stdin` only signals stop it (for
//! running in the background, where stdin is often `/dev/null`). If the process is killed
//! outright, the cluster's watchdog cleans up.

use std::io::{Read, Write};
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use usualstore_testpg::Cluster;

const USAGE: &str = "usage: testpg [--ignore-stdin]\n\
    Starts a throwaway PostgreSQL cluster on 127.0.0.1, prints `export PG...` lines for its superuser,\n\
    and stops it when stdin closes or on SIGTERM/SIGINT (--ignore-stdin: signals only).";

fn main() -> ExitCode {
    let mut watch_stdin = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--ignore-stdin" => watch_stdin = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("testpg: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("testpg: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Signal handlers go in before the banner: whoever reads it may send SIGTERM at once, and
    // until then the default action would kill the process before it cleans up.
    let stop = match StopRequests::install() {
        Ok(stop) => stop,
        Err(error) => {
            drop(cluster);
            eprintln!(
                "testpg: cannot watch for stop requests: {error}; cluster stopped and removed"
            );
            return ExitCode::FAILURE;
        }
    };

    let mut stdout = std::io::stdout().lock();
    for (key, value) in cluster.pg_env() {
        // Values are hex, digits, an address and plain words; single quotes keep shells safe anyway.
        let _ = writeln!(stdout, "export {key}='{}'", value.replace('\'', r"'\''"));
    }
    let _ = stdout.flush();
    drop(stdout);
    eprintln!(
        "testpg: PostgreSQL running on 127.0.0.1:{}, data directory {}; {}",
        cluster.port(),
        cluster.data_dir().display(),
        if watch_stdin {
            "close stdin or send SIGTERM to stop"
        } else {
            "send SIGTERM or SIGINT to stop"
        }
    );

    let outcome = stop.wait(watch_stdin);
    drop(cluster);
    match outcome {
        Ok(reason) => {
            eprintln!("testpg: {reason}; cluster stopped and removed");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!(
                "testpg: cannot wait for a stop request: {error}; cluster stopped and removed"
            );
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment `install` returns.
struct StopRequests {
    runtime: tokio::runtime::Runtime,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopRequests {
    fn install() -> std::io::Result<StopRequests> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (terminate, interrupt) = {
            let _context = runtime.enter();
            (
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            )
        };
        Ok(StopRequests {
            runtime,
            terminate,
            interrupt,
        })
    }

    /// Until a signal arrives or, when `watch_stdin`, stdin closes.
    fn wait(self, watch_stdin: bool) -> std::io::Result<&'static str> {
        let StopRequests {
            runtime,
            mut terminate,
            mut interrupt,
        } = self;
        runtime.block_on(async {
            let (stdin_closed_tx, stdin_closed) = tokio::sync::oneshot::channel::<()>();
            if watch_stdin {
                // A plain thread: tokio's stdin would keep the runtime from shutting down while a
                // read is pending. The process exits without joining it.
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 512];
                    let mut stdin = std::io::stdin();
                    while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
                    let _ = stdin_closed_tx.send(());
                });
            } else {
                // A dropped sender makes the receiver fail, which `select!` treats as a disabled
                // branch.
                drop(stdin_closed_tx);
            }
            Ok(tokio::select! {
                _ = terminate.recv() => "SIGTERM received",
                _ = interrupt.recv() => "SIGINT received",
                Ok(()) = stdin_closed => "stdin closed",
            })
        })
    }
}
