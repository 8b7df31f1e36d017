//! Test harness: tenants provisioned by the project's own tenancy code on the shared test
//! cluster, store-api instances served in-process on free loopback ports, and a minimal HTTP
//! client that can also send what a well-behaved client never would.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use store_api::{AppState, Config, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_postgres::Client;
use usualstore_tenancy::{
    RoleNames, Server, ServicePlan, TenantSpec, create_tenant, quote_ident, quote_literal,
};
use usualstore_testpg::{Cluster, shared, unique_name};

/// Every test user's password (hashed once per process: Argon2 is slow on purpose).
pub const PASSWORD: &str = "correct horse battery";

pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| store_api::auth::hash_password(PASSWORD).expect("hash"))
}

/// A tenant database created by `usualstore_tenancy::create_tenant`, with one login per
/// group role.
pub struct Tenant {
    pub database: String,
    pub name: String,
    pub host: String,
    pub port: u16,
    superuser_password: String,
    /// Login role name → password.
    logins: HashMap<&'static str, (String, String)>,
}

impl Tenant {
    /// On the process-wide shared cluster.
    pub async fn create(prefix: &str) -> Tenant {
        Tenant::create_on(shared(), prefix).await
    }

    pub async fn create_on(cluster: &Cluster, prefix: &str) -> Tenant {
        let database = unique_name(prefix);
        let name = format!("{prefix} O'Brien & \"Sons\"");
        let server = Server::without_tls(cluster.config("postgres"));
        create_tenant(
            &server,
            &TenantSpec {
                database_name: database.clone(),
                tenant_name: name.clone(),
                plan: ServicePlan::Enterprise,
            },
        )
        .await
        .expect("create tenant");
        let roles = RoleNames::for_database(&database);
        let superuser = cluster.connect("postgres").await.expect("superuser");
        let mut logins = HashMap::new();
        for (kind, group) in [
            ("admin", &roles.admin),
            ("developer", &roles.developer),
            ("customer", &roles.customer),
        ] {
            let user = format!("{database}_{kind}_api");
            let password = format!("pw {kind} 'quoted' \\ {}", unique_name("p"));
            superuser
                .batch_execute(&format!(
                    "CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}",
                    quote_ident(&user),
                    quote_literal(&password),
                    quote_ident(group)
                ))
                .await
                .expect("create login role");
            logins.insert(kind, (user, password));
        }
        Tenant {
            database,
            name,
            host: cluster.host().to_owned(),
            port: cluster.port(),
            superuser_password: cluster.superuser_password().to_owned(),
            logins,
        }
    }

    /// A libpq key/value DSN as the provider writes it, for the login of `kind`
    /// (admin, developer, customer).
    pub fn dsn(&self, kind: &str, sslmode: &str) -> String {
        let (user, password) = &self.logins[kind];
        format!(
            "host='{}' port='{}' user='{}' password='{}' dbname='{}' sslmode='{sslmode}'",
            self.host,
            self.port,
            user,
            password.replace('\\', "\\\\").replace('\'', "\\'"),
            self.database
        )
    }

    pub fn login_of(&self, kind: &str) -> &str {
        &self.logins[kind].0
    }

    pub fn password_of(&self, kind: &str) -> &str {
        &self.logins[kind].1
    }

    /// Superuser connection to the tenant database, for setting up and checking state.
    pub async fn superuser(&self) -> Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user("postgres")
            .password(&self.superuser_password)
            .dbname(&self.database);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("superuser connects to the tenant");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Another session holding widget `id`'s row lock (`FOR UPDATE`), so that an order for it
    /// waits; [`RowLock::release`] rolls back.
    pub async fn lock_widget(&self, id: i64) -> RowLock {
        let client = self.superuser().await;
        client.batch_execute("BEGIN").await.expect("begin");
        client
            .execute(
                "SELECT 1 FROM public.widgets WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .expect("lock the widget's row");
        RowLock(client)
    }

    /// A plain SQL session as the tenant's login of `kind`: what anyone holding that login's
    /// DSN can do, store-api or not.
    pub async fn login_session(&self, kind: &str) -> Client {
        let (user, password) = &self.logins[kind];
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(&self.database);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("the login connects to its tenant");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// An application user with [`PASSWORD`], inserted directly.
    pub async fn add_user(&self, email: &str, role: &str) -> i64 {
        self.superuser()
            .await
            .query_one(
                "WITH u AS (INSERT INTO public.users (first_name, last_name, email, role) \
                 VALUES ('Test', $1, $2, $4) RETURNING id), \
                 c AS (INSERT INTO public.user_credentials (user_id, password_hash) \
                 SELECT id, $3 FROM u) SELECT id FROM u",
                &[&role, &email, &password_hash(), &role],
            )
            .await
            .expect("insert user")
            .get(0)
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.superuser()
            .await
            .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
            .await
            .expect("count")
            .get(0)
    }
}

/// A store-api served in-process on a free port of 127.0.0.1.
pub struct App {
    pub addr: SocketAddr,
    /// Where `/metrics` and `/readyz` are served when the config has `OPS_ADDR`.
    pub ops_addr: Option<SocketAddr>,
    pub registry: std::sync::Arc<Registry>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn config(dsn: &str, tenant_name: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_DSN".to_owned(), dsn.to_owned()),
        ("TENANT_NAME".to_owned(), tenant_name.to_owned()),
        ("API_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("DB_POOL_SIZE".to_owned(), "4".to_owned()),
    ]);
    for (key, value) in extra {
        env.insert((*key).to_owned(), (*value).to_owned());
    }
    Config::from_lookup(|name| env.get(name).cloned()).expect("valid test config")
}

impl App {
    pub async fn start(config: Config) -> App {
        let registry = Registry::new(&config).expect("registry");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let mut listeners = vec![store_api::Listener {
            tcp: listener,
            router: store_api::router(registry.clone()),
            limits: config.connection_limits(),
            stats: registry.process().stats.connections.clone(),
            name: "api",
        }];
        let mut ops_addr = None;
        if let Some(ops) = config.ops_addr {
            let tcp = TcpListener::bind(ops).await.expect("bind ops");
            ops_addr = Some(tcp.local_addr().expect("ops addr"));
            listeners.push(store_api::Listener {
                tcp,
                router: store_api::ops_router(registry.clone()),
                limits: config.connection_limits(),
                stats: Default::default(),
                name: "ops",
            });
        }
        // As the binary does: without TENANT_NAME the name is read from the database.
        if let Some(state) = registry.single() {
            state.tenant.learn_in_background(state.pool.clone());
        }
        let task = tokio::spawn(store_api::serve(
            listeners,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(10),
        ));
        App {
            addr,
            ops_addr,
            registry,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The state of a single-tenant instance.
    pub fn state(&self) -> AppState {
        self.registry.single().expect("a single-tenant instance")
    }

    /// An instance connected as the tenant's login of `kind`.
    pub async fn for_tenant(tenant: &Tenant, kind: &str) -> App {
        App::start(config(&tenant.dsn(kind, "disable"), &tenant.name, &[])).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        call(self.addr, "GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        call(self.addr, "POST", path, token, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        call(self.addr, "PATCH", path, token, Some(&body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        call(self.addr, "DELETE", path, token, None).await
    }

    /// Signs in and returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let reply = self
            .post(
                "/api/authenticate",
                None,
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(reply.status, 200, "login {email}: {}", reply.text);
        reply.json["token"].as_str().expect("token").to_owned()
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    pub fn field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// Asserts status and error code, with the body in the failure message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "unexpected reply: {}",
            self.text
        );
        assert_eq!(self.json["error"]["status"], status, "{}", self.text);
    }
}

pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut headers = Vec::new();
    let auth;
    if let Some(token) = token {
        auth = format!("Bearer {token}");
        headers.push(("Authorization", auth.as_str()));
    }
    let bytes = match body {
        Some(body) => {
            headers.push(("Content-Type", "application/json"));
            serde_json::to_vec(body).expect("json")
        }
        None => Vec::new(),
    };
    raw(addr, method, path, &headers, &bytes).await
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // A test that names the host (router mode) sends its own, or none at all with "".
        let own_host = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"));
        let host_line = match own_host {
            Some((_, "")) => String::new(),
            Some((_, host)) => format!("Host: {host}\r\n"),
            None => format!("Host: {addr}\r\n"),
        };
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\n{host_line}Connection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            if !name.eq_ignore_ascii_case("host") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write head");
        // The server may answer (413) and close before reading a large body.
        let _ = stream.write_all(body).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"));
    parse_response(&response).unwrap_or_else(|| {
        panic!(
            "{method} {path}: unparseable response {:?}",
            String::from_utf8_lossy(&response)
        )
    })
}

fn parse_response(bytes: &[u8]) -> Option<Reply> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..split]).ok()?;
    let mut body = bytes[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body)?;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(Reply {
        status,
        headers,
        text,
        json,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A tenant with an instance on its admin DSN and a signed-in user of each role.
pub struct Shop {
    pub tenant: Tenant,
    pub app: App,
    pub admin: String,
    pub developer: String,
    pub customer: String,
}

impl Shop {
    pub async fn open(prefix: &str) -> Shop {
        let tenant = Tenant::create(prefix).await;
        tenant.add_user("admin@example.com", "admin").await;
        tenant.add_user("dev@example.com", "developer").await;
        tenant.add_user("viewer@example.com", "customer").await;
        let app = App::for_tenant(&tenant, "admin").await;
        let (admin, developer, customer) = tokio::join!(
            app.login("admin@example.com"),
            app.login("dev@example.com"),
            app.login("viewer@example.com"),
        );
        Shop {
            tenant,
            app,
            admin,
            developer,
            customer,
        }
    }

    /// A widget added through the API; returns its id.
    pub async fn widget(&self, name: &str, price_cents: i64, stock: i32) -> i64 {
        let reply = self
            .app
            .post(
                "/api/widgets",
                Some(&self.admin),
                json!({ "name": name, "price_cents": price_cents, "inventory_level": stock }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json["id"].as_i64().expect("id")
    }
}

/// store-api run as its own binary on a free loopback port, what it writes to stderr (its log)
/// collected as it comes.
pub struct RunningBinary {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: JoinHandle<()>,
}

impl RunningBinary {
    /// Starts it with `env` only (and its loopback address) and waits until it accepts
    /// connections.
    pub async fn start(env: &[(&str, String)]) -> RunningBinary {
        let port = closed_port();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_store-api"))
            .env_clear()
            .env("API_HOST", "127.0.0.1")
            .env("API_PORT", port.to_string())
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn store-api");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "store-api did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        RunningBinary {
            child,
            addr,
            log,
            reader,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Its whole log, once it has exited.
    pub async fn final_log(self) -> String {
        self.reader.await.expect("the log reader");
        let bytes = self.log.lock().unwrap().clone();
        String::from_utf8(bytes).expect("the log is UTF-8")
    }
}

/// A port nothing listens on (bound and released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A fresh directory for a test's files, under the build's temporary directory.
pub fn unique_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("create test directory");
    dir
}

/// A session holding a row lock, from [`Tenant::lock_widget`].
pub struct RowLock(Client);

impl RowLock {
    pub async fn release(self) {
        self.0.batch_execute("ROLLBACK").await.expect("rollback");
    }
}
