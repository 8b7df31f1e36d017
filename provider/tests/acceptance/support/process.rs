//! Runs one external command with no stdin, captured output and a hard time limit.

use std::fmt;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a command may run before it is killed; `USUALSTORE_TF_TIMEOUT_SECS` overrides.
pub fn default_timeout() -> Duration {
    let secs = std::env::var("USUALSTORE_TF_TIMEOUT_SECS")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// What a finished (or killed) command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// `None` when the command was killed (timeout or signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout then stderr, for searching text wherever Terraform chose to print it.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (self.timed_out, self.code) {
            (true, _) => format!("KILLED after the {:?} time limit", self.elapsed),
            (false, Some(code)) => format!("exit code {code}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status:  {status} ({:.1?})", self.elapsed)?;
        writeln!(f, "----- stdout -----")?;
        writeln!(f, "{}", self.stdout.trim_end())?;
        writeln!(f, "----- stderr -----")?;
        writeln!(f, "{}", self.stderr.trim_end())?;
        write!(f, "------------------")
    }
}

/// Runs `command` to completion or until `timeout`, whichever comes first.
///
/// The command gets its own process group so that a timeout also kills what it started
/// (Terraform's provider plugins), and stdin is closed so nothing can wait for input.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    let description = describe(&command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start `{description}`: {error}"));
    let pid = child.id();
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let mut timed_out = false;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                timed_out = true;
                kill_group(pid);
                let _ = child.kill();
                break child
                    .wait()
                    .unwrap_or_else(|error| panic!("waiting for `{description}`: {error}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(error) => panic!("waiting for `{description}`: {error}"),
        }
    };
    let elapsed = started.elapsed();

    // A leftover grandchild keeps the pipes open; give it a moment, then end the group.
    let grace = Duration::from_secs(10);
    let mut stdout_text = stdout.recv_timeout(grace);
    let mut stderr_text = stderr.recv_timeout(grace);
    if stdout_text.is_err() || stderr_text.is_err() {
        kill_group(pid);
        if stdout_text.is_err() {
            stdout_text = stdout.recv_timeout(grace);
        }
        if stderr_text.is_err() {
            stderr_text = stderr.recv_timeout(grace);
        }
    }
    Output {
        command: description,
        code: status.code(),
        timed_out,
        elapsed,
        stdout: stdout_text.unwrap_or_else(|_| "<stdout still open: not read>".to_owned()),
        stderr: stderr_text.unwrap_or_else(|_| "<stderr still open: not read>".to_owned()),
    }
}

/// Reads a pipe to its end on a thread of its own, so a full pipe never blocks the child.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = sender.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    receiver
}

fn kill_group(pid: u32) {
    // The group id is the child's pid (process_group(0)); `kill` saves a libc dependency.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    words.join(" ")
}
