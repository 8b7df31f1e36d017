//! A small WebDriver client (W3C protocol over HTTP/1.1, JSON) for headless Chromium through
//! Debian's chromedriver: just the commands the browser test uses, on the harness's own HTTP
//! client, so no crate is added for it.
//!
//! chromedriver listens on 127.0.0.1 on a free port, in a process group of its own; the browser
//! it starts joins that group. Dropping the [`Driver`] ends the session and then the whole group,
//! so a failing test leaves no browser behind.
//!
//! chromedriver says `Connection: close` but keeps the socket open, so answers are read by their
//! `Content-Length` ([`http`]), not to the end of the stream as the harness's `raw` does.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The W3C name of an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for something on the page lasts before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// What chromedriver answered.
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

/// One request on a fresh connection; the answer read up to its `Content-Length`. A command
/// that takes longer than [`WAIT`] (plus page-load time) fails the test.
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        request.push_str(&body);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buffer = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .ok_or_else(|| format!("bad status line in {head:?}"))?;
                let length = head
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, value)| value.trim().parse::<usize>().ok());
                let start = end + 4;
                while length.is_none_or(|length| buffer.len() < start + length) {
                    let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                    if read == 0 {
                        break;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                }
                let end = length.map_or(buffer.len(), |length| (start + length).min(buffer.len()));
                let text = String::from_utf8_lossy(&buffer[start..end]).into_owned();
                let json = serde_json::from_str(&text).unwrap_or(Value::Null);
                return Ok::<_, String>(Answer { status, text, json });
            }
            let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("connection closed before the headers ended".to_owned());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
    };
    // Boxed: every command's future would otherwise carry this one, buffers and all, on the
    // test thread's stack.
    match tokio::time::timeout(WAIT * 3, Box::pin(exchange)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => panic!("chromedriver {method} {path}: {error}"),
        Err(_) => panic!(
            "chromedriver {method} {path}: no answer within {:?}",
            WAIT * 3
        ),
    }
}

/// Written straight to stderr (the harness captures `eprintln!` of passing tests).
pub fn loud_note(message: &str) {
    let line = "*".repeat(78);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{line}\n* store-api browser test: {message}\n{line}"
    );
}

/// The binaries, from `USUALSTORE_CHROMEDRIVER` / `USUALSTORE_CHROMIUM` or `PATH`.
#[derive(Debug, Clone)]
pub struct Tools {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn explicit(variable: &str) -> Option<PathBuf> {
    let value = std::env::var_os(variable)?;
    let path = PathBuf::from(value);
    // A choice that does not exist is a broken set-up, not a reason to skip.
    assert!(
        path.is_file(),
        "{variable}={} does not exist",
        path.display()
    );
    Some(path)
}

fn find_tools() -> Option<Tools> {
    Some(Tools {
        chromedriver: explicit("USUALSTORE_CHROMEDRIVER").or_else(|| on_path(&["chromedriver"]))?,
        chromium: explicit("USUALSTORE_CHROMIUM")
            .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]))?,
    })
}

/// Chromium and chromedriver, installed by `scripts/ensure-browser.sh` (as `make deps` does)
/// when missing; `None`, after a loud note, only when they cannot be installed here.
pub fn tools() -> Option<Tools> {
    if let Some(tools) = find_tools() {
        return Some(tools);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ensure-browser.sh");
    loud_note(&format!(
        "no chromium/chromedriver here; installing them with {}",
        script.display()
    ));
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output();
    match (find_tools(), output) {
        (Some(tools), _) => Some(tools),
        (None, Ok(output)) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            loud_note(&format!(
                "SKIPPED: Chromium and chromedriver could not be installed ({}), so the \
                 storefront was NOT tested in a browser. Last lines:\n{}",
                output.status,
                tail.join("\n")
            ));
            None
        }
        (None, Err(error)) => {
            loud_note(&format!(
                "SKIPPED: {} could not run ({error}), so the storefront was NOT tested in a browser",
                script.display()
            ));
            None
        }
    }
}

/// A running chromedriver.
pub struct Driver {
    child: Child,
    pub addr: SocketAddr,
    tools: Tools,
    session: Option<String>,
}

impl Driver {
    pub async fn start(tools: &Tools) -> Driver {
        let port = crate::common::closed_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut command = Command::new(&tools.chromedriver);
        command
            .arg(format!("--port={port}"))
            // Only this machine may drive it (the default already; said out loud).
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().unwrap_or_else(|error| {
            panic!("cannot start {}: {error}", tools.chromedriver.display())
        });
        let mut driver = Driver {
            child,
            addr,
            tools: tools.clone(),
            session: None,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                let status = http(addr, "GET", "/status", None).await;
                if status.json["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A headless browser window of `width` × `height` CSS pixels.
    pub async fn browser(&mut self, width: u32, height: u32) -> Browser {
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": self.tools.chromium,
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--disable-crash-reporter",
                        "--no-first-run",
                        format!("--window-size={width},{height}"),
                    ],
                },
                // The page's console, to catch CSP violations and uncaught errors.
                "goog:loggingPrefs": { "browser": "ALL" },
            }}
        });
        let reply = http(self.addr, "POST", "/session", Some(&capabilities)).await;
        let session = reply.json["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {}", reply.text))
            .to_owned();
        self.session = Some(session.clone());
        Browser {
            addr: self.addr,
            session,
        }
    }

    /// Ends the session (the browser quits) and chromedriver.
    pub async fn stop(mut self) {
        if let Some(session) = self.session.take() {
            http(self.addr, "DELETE", &format!("/session/{session}"), None).await;
        }
        self.kill_group();
    }

    fn kill_group(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Driver {
    /// After a failed assertion: no async here, so the group goes without the session's goodbye.
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// One WebDriver session.
pub struct Browser {
    addr: SocketAddr,
    session: String,
}

/// A reference to an element of the current page.
#[derive(Clone)]
pub struct Element {
    id: String,
}

impl Browser {
    /// Sends a command; the `value` of the answer, or a panic naming the WebDriver error.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        let reply = http(self.addr, method, &path, body.as_ref()).await;
        if reply.status == 200 {
            return Ok(reply.json["value"].clone());
        }
        Err(format!(
            "{method} {path}: {} {}",
            reply.json["value"]["error"].as_str().unwrap_or("?"),
            reply.json["value"]["message"]
                .as_str()
                .unwrap_or(&reply.text)
                .lines()
                .next()
                .unwrap_or("")
        ))
    }

    async fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    pub async fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn url(&self) -> String {
        self.must("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub async fn title(&self) -> String {
        self.must("GET", "/title", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub async fn set_size(&self, width: u32, height: u32) {
        self.must(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Every element matching `css` now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        let found = self
            .must(
                "POST",
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item[ELEMENT].as_str())
                    .map(|id| Element { id: id.to_owned() })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(element) = self.all(css).await.into_iter().next() {
                return element;
            }
            if Instant::now() > deadline {
                let body = self
                    .script("return document.body.innerText", json!([]))
                    .await;
                panic!("no {css} after {WAIT:?}; the page reads:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of the first element matching `css` contains `needle`; the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self
                .script(
                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                    json!([css]),
                )
                .await;
            if let Some(text) = text.as_str()
                && text.contains(needle)
            {
                return text.to_owned();
            }
            if Instant::now() > deadline {
                let messages = self
                    .script(
                        "const m = document.getElementById('messages'); return m ? m.textContent : '';",
                        json!([]),
                    )
                    .await;
                panic!("{css} never read {needle:?} (last: {text}; messages: {messages})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.all(css).await.is_empty() {
            assert!(Instant::now() < deadline, "{css} is still there");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &Element) {
        self.must(
            "POST",
            &format!("/element/{}/click", element.id),
            Some(json!({})),
        )
        .await;
    }

    /// Replaces what the field holds with `text`.
    pub async fn fill(&self, element: &Element, text: &str) {
        self.must(
            "POST",
            &format!("/element/{}/clear", element.id),
            Some(json!({})),
        )
        .await;
        self.must(
            "POST",
            &format!("/element/{}/value", element.id),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn text(&self, element: &Element) -> String {
        self.must("GET", &format!("/element/{}/text", element.id), None)
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.must(
            "GET",
            &format!("/element/{}/attribute/{name}", element.id),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.must("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or(""))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Console lines until one contains `needle` (every line read meanwhile).
    pub async fn wait_console(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        loop {
            lines.extend(self.console().await);
            if lines.iter().any(|line| line.contains(needle)) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "the console never said {needle:?}: {lines:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The console lines logged since the last call (chromedriver's log extension); empty when
    /// the driver does not offer it.
    pub async fn console(&self) -> Vec<String> {
        match self
            .command("POST", "/se/log", Some(json!({ "type": "browser" })))
            .await
        {
            Ok(Value::Array(entries)) => entries
                .iter()
                .map(|entry| {
                    format!(
                        "{} {}",
                        entry["level"].as_str().unwrap_or("?"),
                        entry["message"].as_str().unwrap_or("")
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
