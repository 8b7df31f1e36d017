//! The attack suite: what a tenant's login (of any role) would try against the real provider,
//! driven by real Terraform against a private PostgreSQL cluster per attack (several of them
//! change server-wide settings). Each test is one opening of issue 9, asserted closed; see
//! docs/guides/security.md for the threat model they hold up.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::pg::block_on;
use crate::support::{Plan, Terraform, Workdir, hcl};
use tokio_postgres::Client;
use usualstore_testpg::Cluster;

/// Every login of these tests has this password (the provider only ever sends a verifier).
const PASSWORD: &str = "attack suite password 1";
const ROLES: [&str; 3] = ["admin", "developer", "customer"];
const DENIED: &str = "42501";

/// A private cluster and a Terraform working directory whose provider manages it as superuser.
struct Lab {
    cluster: Cluster,
    workdir: Workdir,
    provider_body: String,
}

impl Lab {
    fn new(terraform: &Terraform, provider_body: &str) -> Lab {
        let cluster = Cluster::start().expect("a private PostgreSQL cluster");
        let mut workdir = Workdir::without_cluster(terraform, "");
        for (key, value) in cluster.pg_env() {
            workdir.set_env(&key, &value);
        }
        // An attack that makes the provider hang must fail the test, not stall the suite.
        workdir.set_timeout(Duration::from_secs(180));
        Lab {
            cluster,
            workdir,
            provider_body: provider_body.to_owned(),
        }
    }

    /// Writes the configuration: the provider block plus `resources`.
    fn configure(&self, resources: &str) {
        self.workdir.set_config(&format!(
            "{}{resources}",
            hcl::provider_config(&self.provider_body)
        ));
    }

    fn superuser(&self, database: &str) -> Client {
        block_on(self.cluster.connect(database))
            .unwrap_or_else(|error| panic!("superuser on {database}: {error}"))
    }

    fn login(&self, database: &str, user: &str) -> Result<Client, tokio_postgres::Error> {
        block_on(self.cluster.connect_as(database, user, PASSWORD))
    }

    fn login_ok(&self, database: &str, user: &str) -> Client {
        self.login(database, user)
            .unwrap_or_else(|error| panic!("{user} on {database}: {error}"))
    }
}

fn tenant_block(database: &str) -> String {
    format!(
        "resource \"usualstore_tenant\" \"{database}\" {{\n  database_name = \"{database}\"\n  \
         tenant_name = \"Tenant {database}\"\n  deletion_protection = false\n}}\n"
    )
}

fn username(database: &str, role: &str) -> String {
    format!("{database}_{}", &role[..3])
}

/// One login user of each role, with e-mail addresses.
fn user_blocks(database: &str) -> String {
    ROLES
        .iter()
        .map(|role| {
            format!(
                "resource \"usualstore_tenant_user\" \"{database}_{role}\" {{\n  \
                 tenant = usualstore_tenant.{database}.database_name\n  username = \"{}\"\n  \
                 role = \"{role}\"\n  password = {}\n  email = \"{role}@{database}.example\"\n}}\n",
                username(database, role),
                hcl::string(PASSWORD),
            )
        })
        .collect()
}

fn tenant_with_users(database: &str) -> String {
    tenant_block(database) + &user_blocks(database)
}

/// `None` when `sql` succeeds, else its SQLSTATE (or the error text without one).
fn outcome(client: &Client, sql: &str) -> Option<String> {
    block_on(client.batch_execute(sql)).err().map(|error| {
        error
            .code()
            .map_or_else(|| error.to_string(), |code| code.code().to_owned())
    })
}

fn assert_denied(client: &Client, sql: &str, who: &str) {
    assert_eq!(
        outcome(client, sql).as_deref(),
        Some(DENIED),
        "{who} was allowed: {sql}"
    );
}

fn assert_allowed(client: &Client, sql: &str, who: &str) {
    assert_eq!(outcome(client, sql), None, "{who} was refused: {sql}");
}

fn expect_changes(plan: Plan, what: &str) -> String {
    match plan {
        Plan::Changes(stdout) => stdout,
        Plan::NoChanges => panic!("expected the plan to show {what}"),
    }
}

/// Terraform wraps diagnostics and draws a box around them: compare words, not layout.
fn flatten(text: &str) -> String {
    text.replace(['│', '╷', '╵'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_mentions(text: &str, needles: &[&str]) {
    let flat = flatten(text);
    for needle in needles {
        assert!(
            flat.contains(&flatten(needle)),
            "{needle:?} missing from:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A provider session never runs what a tenant's login created.

/// PostgreSQL 14 and older let PUBLIC create objects in the maintenance database's schema public
/// (so does every cluster upgraded from one). Logins of each role plant functions that shadow
/// the catalog functions a provider calls with untyped literals; were one to run inside a
/// provider session (a superuser's), its login would become a superuser.
fn search_path_traps_never_run(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    // The superuser keeps the log of sprung traps, so dropping the logins' objects keeps it.
    block_on(lab.superuser("postgres").batch_execute(
        "GRANT CREATE ON SCHEMA public TO PUBLIC; \
         CREATE TABLE public.sprung (who text, at timestamptz DEFAULT now()); \
         GRANT INSERT ON public.sprung TO PUBLIC",
    ))
    .expect("PostgreSQL 14 style schema public");
    let database = "trapped";
    lab.configure(&tenant_with_users(database));
    lab.workdir.init();
    lab.workdir.apply(&[]);

    let logins: Vec<String> = ROLES.iter().map(|role| username(database, role)).collect();
    let traps = [
        "public.shobj_description(oid, text) RETURNS text",
        "public.acldefault(text, oid) RETURNS aclitem[]",
        "public.format(text, text, text, text) RETURNS text",
    ];
    for (login, signature) in logins.iter().zip(traps) {
        let client = lab.login_ok("postgres", login);
        assert_allowed(
            &client,
            &format!(
                "CREATE FUNCTION {signature} LANGUAGE plpgsql AS $trap$ BEGIN \
                 INSERT INTO public.sprung (who) VALUES (session_user); \
                 EXECUTE 'ALTER ROLE {login} SUPERUSER'; RETURN NULL; END $trap$"
            ),
            login,
        );
    }
    let assert_nothing_sprung = |step: &str| {
        let superuser = lab.superuser("postgres");
        let row = block_on(superuser.query_one(
            "SELECT (SELECT count(*) FROM public.sprung), \
                    (SELECT count(*) FROM pg_roles WHERE rolsuper AND rolname = ANY($1))",
            &[&logins],
        ))
        .expect("trap count");
        let (sprung, superusers): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!((sprung, superusers), (0, 0), "a trap ran during {step}");
    };

    assert!(matches!(lab.workdir.plan_detailed(), Plan::NoChanges));
    assert_nothing_sprung("a refreshing plan");
    lab.configure(
        &(tenant_with_users(database).replace("Tenant trapped", "Tenant trapped, renamed")
            + "resource \"usualstore_server\" \"this\" {}\n"),
    );
    lab.workdir.apply(&[]);
    assert_nothing_sprung("an update and the server's lockdown");
    lab.workdir.destroy();
    assert_nothing_sprung("a destroy");
}

// ---------------------------------------------------------------------------------------------
// 2. No login can make the provider wait forever.

fn lock_waits_are_bounded_and_name_the_holder(terraform: &Terraform) {
    let lab = Lab::new(terraform, "  lock_timeout = 2");
    let config = tenant_with_users("lka") + &tenant_with_users("lkb");
    lab.configure(&config);
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let attacker = username("lka", "admin");

    // Tenant a's admin, in the maintenance database, takes tenant b's lock and keeps it.
    let holder = lab.login_ok("postgres", &attacker);
    let pid: i32 = block_on(holder.query_one(
        "SELECT pg_advisory_lock(1970470914, hashtext('lkb')), pg_backend_pid()",
        &[],
    ))
    .expect("take tenant b's lock")
    .get(1);
    lab.configure(&config.replace("Tenant lkb", "Tenant lkb, renamed"));
    let stuck = lab.workdir.try_apply(&[]);
    assert!(
        !stuck.success(),
        "the apply ignored the held lock:\n{stuck}"
    );
    assert_mentions(
        &stuck.combined(),
        &[
            "gave up waiting for the lock on tenant \"lkb\" after 2 s",
            &format!("pid {pid}"),
            &format!("\"{attacker}\""),
            "pg_terminate_backend",
            "lock_timeout",
        ],
    );
    drop(holder);
    lab.workdir.apply(&[]);

    // In its own database it holds the schema migrations' lock.
    let holder = lab.login_ok("lka", &attacker);
    let pid: i32 = block_on(holder.query_one(
        "SELECT pg_advisory_lock($1), pg_backend_pid()",
        &[&usualstore_schema::MIGRATION_LOCK_KEY],
    ))
    .expect("take the migration lock")
    .get(1);
    lab.configure(&config.replace("Tenant lka", "Tenant lka, renamed"));
    let stuck = lab.workdir.try_apply(&[]);
    assert!(
        !stuck.success(),
        "the apply ignored the held lock:\n{stuck}"
    );
    assert_mentions(
        &stuck.combined(),
        &[
            "in database \"lka\"",
            &format!("pid {pid}"),
            &format!("\"{attacker}\""),
        ],
    );
    drop(holder);
    lab.workdir.apply(&[]);
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 3. usualstore_server: a login connects to its own database and nowhere else.

fn server_lockdown_confines_logins(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    let tenants = tenant_with_users("srva") + &tenant_with_users("srvb");
    lab.configure(&tenants);
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let warned = lab.workdir.try_plan(&[]);
    assert_mentions(
        &warned.combined(),
        &[
            "Tenant logins can connect outside their tenant",
            "usualstore_server",
        ],
    );
    let login = username("srva", "customer");
    assert!(lab.login("postgres", &login).is_ok(), "PUBLIC may connect");

    let with_server = tenants.clone() + "resource \"usualstore_server\" \"this\" {}\n";
    lab.configure(&with_server);
    let planned = expect_changes(lab.workdir.plan_detailed(), "the lockdown");
    assert_mentions(&planned, &["usualstore_server.this", "will be created"]);
    lab.workdir.apply(&[]);
    let quiet = lab.workdir.try_plan(&["-detailed-exitcode"]);
    assert_eq!(quiet.code, Some(0), "{quiet}");
    assert!(
        !quiet.combined().contains("can connect outside"),
        "still warned:\n{quiet}"
    );

    let confined = |who: &str| {
        for role in ROLES {
            let user = username("srva", role);
            for elsewhere in ["postgres", "template1", "srvb"] {
                let refused = lab
                    .login(elsewhere, &user)
                    .expect_err("connected outside its tenant");
                assert_eq!(
                    refused.code().map(|code| code.code()),
                    Some(DENIED),
                    "{who}: {user} on {elsewhere}: {refused}"
                );
            }
            assert!(lab.login("srva", &user).is_ok(), "{who}: {user} at home");
        }
    };
    confined("after the apply");
    // The maintenance database's built-ins are closed as well.
    let superuser = lab.superuser("postgres");
    let executable: bool = block_on(superuser.query_one(
        "SELECT has_function_privilege('public', 'pg_catalog.lo_create(oid)', 'EXECUTE')",
        &[],
    ))
    .expect("privilege")
    .get(0);
    assert!(!executable, "PUBLIC may create large objects in postgres");

    // Drift: somebody opens the server again.
    block_on(superuser.batch_execute(
        "GRANT CONNECT ON DATABASE postgres TO PUBLIC; GRANT CREATE ON SCHEMA public TO PUBLIC",
    ))
    .expect("reopen");
    let drift = expect_changes(lab.workdir.plan_detailed(), "the reopened server");
    assert_mentions(
        &drift,
        &[
            "PUBLIC has CONNECT on database \\\"postgres\\\"",
            "PUBLIC may create objects in schema \\\"public\\\"",
        ],
    );
    lab.workdir.apply(&[]);
    confined("after the repair");

    // Import by the maintenance database's name.
    lab.workdir.run(&["state", "rm", "usualstore_server.this"]);
    lab.workdir.import("usualstore_server.this", "postgres");
    lab.workdir.assert_no_changes();

    // Removing it gives PUBLIC its CONNECT back.
    lab.configure(&tenants);
    lab.workdir.apply(&[]);
    assert!(lab.login("postgres", &login).is_ok(), "CONNECT restored");
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 4. The application's login secrets belong to the admin group.

fn login_secrets_belong_to_admins(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    let database = "secrets";
    lab.configure(&tenant_with_users(database));
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let superuser = lab.superuser(database);
    block_on(superuser.batch_execute(
        "INSERT INTO public.users (first_name, last_name, email, role) \
         VALUES ('Ada', 'Admin', 'ada@example.com', 'admin'); \
         INSERT INTO public.user_credentials (user_id, password_hash) \
         SELECT id, '$argon2id$v=19$secret' FROM public.users",
    ))
    .expect("an application user");

    let secrets = [
        "SELECT * FROM public.user_credentials",
        "SELECT * FROM public.tokens",
        "SELECT * FROM public.sessions",
    ];
    let minting = [
        "INSERT INTO public.tokens (user_id, name, email, token_hash, expiry) \
         SELECT id, 'x', email, '\\x01', now() + interval '1 day' FROM public.users",
        "UPDATE public.users SET role = 'admin'",
        "UPDATE public.user_credentials SET password_hash = 'mine'",
    ];
    let check = |step: &str| {
        for role in ["developer", "customer"] {
            let who = format!("{role} ({step})");
            let client = lab.login_ok(database, &username(database, role));
            for sql in secrets.iter().chain(&minting) {
                assert_denied(&client, sql, &who);
            }
            assert_allowed(
                &client,
                "SELECT id, first_name, last_name, email, role FROM public.users",
                &who,
            );
        }
        let admin = lab.login_ok(database, &username(database, "admin"));
        for sql in secrets {
            assert_allowed(&admin, sql, "admin");
        }
    };
    check("as applied");

    // Drift on these grants is seen and repaired like any other.
    block_on(superuser.batch_execute(&format!(
        "GRANT SELECT ON public.tokens, public.user_credentials TO {database}_customer; \
         GRANT INSERT ON public.tokens TO {database}_developer"
    )))
    .expect("widen the grants");
    let drift = expect_changes(lab.workdir.plan_detailed(), "the widened grants");
    assert_mentions(&drift, &["privileges_in_sync"]);
    lab.workdir.apply(&[]);
    check("after the repair");
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 5. E-mail addresses stay inside their tenant.

fn emails_stay_inside_the_tenant(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    lab.configure(&(tenant_with_users("mails") + &tenant_with_users("other")));
    lab.workdir.init();
    lab.workdir.apply(&[]);

    // What every login on the server can read: no address in any role comment.
    let outsider = lab.login_ok("other", &username("other", "customer"));
    let comments: String = block_on(outsider.query_one(
        "SELECT coalesce(string_agg(shobj_description(oid, 'pg_authid'), ' '), '') FROM pg_roles",
        &[],
    ))
    .expect("role comments")
    .get(0);
    assert!(
        !comments.contains('@'),
        "an address in shared catalogs: {comments}"
    );

    // Inside the tenant: its admins read them, nobody else.
    let read = "SELECT username, email FROM public.usualstore_login_users";
    let admin = lab.login_ok("mails", &username("mails", "admin"));
    let rows = block_on(admin.query(read, &[])).expect("admins read the addresses");
    assert_eq!(rows.len(), 3);
    assert_denied(&admin, "DELETE FROM public.usualstore_login_users", "admin");
    for role in ["developer", "customer"] {
        let client = lab.login_ok("mails", &username("mails", role));
        assert_denied(&client, read, role);
    }

    // Drift from there shows in the plan and is repaired; import reads it back.
    let superuser = lab.superuser("mails");
    block_on(superuser.batch_execute(
        "UPDATE public.usualstore_login_users SET email = 'changed@elsewhere.example' \
         WHERE username = 'mails_dev'",
    ))
    .expect("change an address");
    let drift = expect_changes(lab.workdir.plan_detailed(), "the changed address");
    assert_mentions(
        &drift,
        &["changed@elsewhere.example", "developer@mails.example"],
    );
    lab.workdir.apply(&[]);
    lab.workdir
        .run(&["state", "rm", "usualstore_tenant_user.mails_developer"]);
    lab.workdir
        .import("usualstore_tenant_user.mails_developer", "mails/mails_dev");
    assert_eq!(
        lab.workdir
            .resource_values("usualstore_tenant_user.mails_developer")["email"],
        "developer@mails.example"
    );

    // A user as earlier versions left it, address in its comment: the next apply moves it.
    let maintenance = lab.superuser("postgres");
    block_on(maintenance.batch_execute(
        "COMMENT ON ROLE mails_cus IS '{\"usualstore\":1,\"database\":\"mails\",\"kind\":\"user\",\
         \"email\":\"customer@mails.example\",\"status\":\"ready\"}'",
    ))
    .expect("an old comment");
    expect_changes(lab.workdir.plan_detailed(), "the address to move");
    lab.workdir.apply(&[]);
    let comment: String = block_on(maintenance.query_one(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = 'mails_cus'",
        &[],
    ))
    .expect("comment")
    .get(0);
    assert!(!comment.contains('@'), "{comment}");
    lab.workdir.assert_no_changes();
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 6. No login writes large objects.

fn large_objects_are_closed(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    let database = "blobs";
    lab.configure(&tenant_with_users(database));
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let writers = [
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        "SELECT lo_from_bytea(0, '\\x00')",
        "SELECT lo_import('/etc/hostname')",
    ];
    let check = |step: &str| {
        for role in ROLES {
            let client = lab.login_ok(database, &username(database, role));
            for sql in writers {
                assert_denied(&client, sql, &format!("{role} ({step})"));
            }
        }
    };
    check("as applied");
    block_on(
        lab.superuser(database)
            .batch_execute("GRANT EXECUTE ON FUNCTION lo_create(oid) TO PUBLIC"),
    )
    .expect("reopen lo_create");
    let drift = expect_changes(lab.workdir.plan_detailed(), "the reopened function");
    assert_mentions(&drift, &["privileges_in_sync"]);
    lab.workdir.apply(&[]);
    check("after the repair");
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 7. A stored password verifier cannot make a refresh burn CPU.

fn an_expensive_verifier_is_reset_not_computed(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    let database = "scram";
    lab.configure(&tenant_with_users(database));
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let login = username(database, "customer");
    let stored: String = block_on(lab.superuser("postgres").query_one(
        "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
        &[&login],
    ))
    .expect("verifier")
    .get(0);
    // Same salt and keys, a million iterations: over the provider's cap, so the check says
    // "changed" without computing (a billion would cost minutes per refresh otherwise; the
    // server itself spends a moment on such a verifier when it is set, so the test stays small).
    let (_, rest) = stored
        .split_once(':')
        .expect("SCRAM-SHA-256$<iterations>:…");
    let heavy = format!("SCRAM-SHA-256$1000000:{rest}");
    let client = lab.login_ok(database, &login);
    assert_allowed(
        &client,
        &format!("ALTER ROLE {login} PASSWORD '{heavy}'"),
        "a login setting its own password",
    );
    let drift = expect_changes(lab.workdir.plan_detailed(), "the changed password");
    assert_mentions(&drift, &["password_in_sync"]);
    lab.workdir.apply(&[]);
    assert!(
        lab.login(database, &login).is_ok(),
        "the password is Terraform's again"
    );
    lab.workdir.destroy();
}

// ---------------------------------------------------------------------------------------------
// 8. Usernames cannot squat a tenant's group roles.

fn squatting_usernames_are_refused_at_plan(terraform: &Terraform) {
    let lab = Lab::new(terraform, "");
    let squatter = user_blocks("squat")
        .replace("\"squat_adm\"", "\"future_shop_owner\"")
        .replace("\"squat_dev\"", "\"pg_reader\"");
    lab.configure(&(tenant_block("squat") + &squatter));
    lab.workdir.init();
    let plan = lab.workdir.try_plan(&[]);
    assert!(!plan.success(), "{plan}");
    assert_mentions(
        &plan.combined(),
        &[
            "Invalid username",
            "\"future_shop_owner\" ends with \"_owner\"",
            "names starting with \"pg_\" are reserved by PostgreSQL",
        ],
    );
    let roles: i64 = block_on(lab.superuser("postgres").query_one(
        "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'squat%' OR rolname = 'future_shop_owner'",
        &[],
    ))
    .expect("roles")
    .get(0);
    assert_eq!(roles, 0, "the refused plan created something");
}

// ---------------------------------------------------------------------------------------------
// 10. TLS that can be trusted, and no password in clear text to a server nobody verified.

/// A certificate authority and a server certificate it signed for `localhost` only.
struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("server params")
        .signed_by(&server_key, &ca)
        .expect("server certificate");
    Pki {
        ca_pem: ca.pem(),
        server_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

fn verified_tls_and_dsns(terraform: &Terraform) {
    let trusted = pki();
    let rogue = pki();
    let lab = Lab::new(terraform, "");
    lab.cluster
        .enable_tls(&trusted.server_pem, &trusted.server_key_pem)
        .expect("TLS on the cluster");
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let rogue_ca = dir.path().join("rogue.pem");
    std::fs::write(&ca, &trusted.ca_pem).expect("write CA");
    std::fs::write(&rogue_ca, &rogue.ca_pem).expect("write rogue CA");
    let provider = |host: &str, mode: &str, root: &std::path::Path| {
        format!(
            "  host = \"{host}\"\n  sslmode = \"{mode}\"\n  sslrootcert = {}\n",
            hcl::string(&root.display().to_string())
        )
    };
    let resources = tenant_block("tls")
        + &user_blocks("tls")
        + "output \"dsn\" {\n  value = usualstore_tenant_user.tls_admin.dsn\n  sensitive = true\n}\n";
    let write = |body: String| {
        lab.workdir
            .set_config(&format!("{}{resources}", hcl::provider_config(&body)));
    };

    write(provider("localhost", "verify-full", &ca));
    lab.workdir.init();
    lab.workdir.apply(&[]);
    let dsn = lab.workdir.output_json()["dsn"]["value"]
        .as_str()
        .expect("dsn")
        .to_owned();
    assert_mentions(
        &dsn,
        &[
            "sslmode='verify-full'",
            &format!("sslrootcert='{}'", ca.display()),
        ],
    );

    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca accepts.
    write(provider("127.0.0.1", "verify-full", &ca));
    let refused = lab.workdir.try_plan(&[]);
    assert!(!refused.success(), "{refused}");
    assert_mentions(
        &refused.combined(),
        &["Cannot connect to PostgreSQL", "certificate"],
    );
    write(provider("127.0.0.1", "verify-ca", &ca));
    let accepted = lab.workdir.try_plan(&[]);
    assert!(accepted.success(), "{accepted}");
    // A certificate from another authority is refused by both.
    write(provider("localhost", "verify-ca", &rogue_ca));
    let refused = lab.workdir.try_plan(&[]);
    assert!(!refused.success(), "{refused}");
    assert_mentions(&refused.combined(), &["certificate"]);

    write(provider("localhost", "verify-full", &ca));
    lab.workdir.destroy();
}

/// A server that asks for the password in clear text, as a man in the middle would, and keeps
/// whatever the client sends back.
struct CleartextAsker {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl CleartextAsker {
    fn start() -> CleartextAsker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (kept, stopping) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let kept = Arc::clone(&kept);
                        std::thread::spawn(move || ask_for_cleartext(stream, &kept));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        CleartextAsker {
            port,
            received,
            stop,
        }
    }

    fn received(&self) -> Vec<u8> {
        self.received
            .lock()
            .map(|bytes| bytes.clone())
            .unwrap_or_default()
    }
}

impl Drop for CleartextAsker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn ask_for_cleartext(mut stream: TcpStream, kept: &Mutex<Vec<u8>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut first = [0u8; 8];
    if stream.read_exact(&mut first).is_err() {
        return;
    }
    let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let mut startup_length = u32::from_be_bytes([first[0], first[1], first[2], first[3]]) as usize;
    let mut have = 8;
    if first == ssl_request {
        // No TLS here: the client goes on in plain text, as sslmode=prefer does.
        if stream.write_all(b"N").is_err() {
            return;
        }
        let mut length = [0u8; 4];
        if stream.read_exact(&mut length).is_err() {
            return;
        }
        startup_length = u32::from_be_bytes(length) as usize;
        have = 4;
    }
    let mut rest = vec![0u8; startup_length.saturating_sub(have)];
    if stream.read_exact(&mut rest).is_err() {
        return;
    }
    // AuthenticationCleartextPassword.
    if stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    if let Ok(mut kept) = kept.lock() {
        kept.extend_from_slice(&answer);
    }
}

fn cleartext_password_requests_are_refused(terraform: &Terraform) {
    let asker = CleartextAsker::start();
    let secret = "the operator's own password";
    let mut workdir = Workdir::without_cluster(
        terraform,
        &format!(
            "{}{}",
            hcl::provider_config(&format!(
                "  host = \"127.0.0.1\"\n  port = {}\n  username = \"operator\"\n  \
                 password = {}\n  sslmode = \"prefer\"\n  connect_timeout = 5\n",
                asker.port,
                hcl::string(secret)
            )),
            tenant_block("mitm")
        ),
    );
    workdir.set_timeout(Duration::from_secs(120));
    workdir.init();
    let refused = workdir.try_plan(&[]);
    assert!(!refused.success(), "{refused}");
    assert_mentions(&refused.combined(), &["clear text"]);
    let received = asker.received();
    assert!(
        !String::from_utf8_lossy(&received).contains(secret),
        "the password reached the server that asked for it in clear text"
    );

    // Allowed explicitly, it is sent: which is what the refusal protects against.
    let allowed = std::fs::read_to_string(workdir.path().join("main.tf"))
        .expect("main.tf")
        .replace(
            "sslmode = \"prefer\"",
            "sslmode = \"prefer\"\n  allow_cleartext_password = true",
        );
    workdir.set_config(&allowed);
    let _ = workdir.try_plan(&[]);
    assert!(
        String::from_utf8_lossy(&asker.received()).contains(secret),
        "with allow_cleartext_password the password is sent"
    );
}

// ---------------------------------------------------------------------------------------------

macro_rules! attacks {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                crate::support::with_terraform(Terraform::v1_11, "1.11", super::$scenario);
            }
        )*
    };
}

mod with_terraform_1_11 {
    use super::*;

    attacks!(
        search_path_traps_never_run,
        lock_waits_are_bounded_and_name_the_holder,
        server_lockdown_confines_logins,
        login_secrets_belong_to_admins,
        emails_stay_inside_the_tenant,
        large_objects_are_closed,
        an_expensive_verifier_is_reset_not_computed,
        squatting_usernames_are_refused_at_plan,
        verified_tls_and_dsns,
        cleartext_password_requests_are_refused,
    );
}
