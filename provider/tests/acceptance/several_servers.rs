//! `examples/multi-server` against two throwaway servers: tenants land on the server they name, and a tenant is
//! moved from one server to the other the way docs/guides/several-servers.md describes.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::str::FromStr;

use crate::support::pg::{self, Db, block_on};
use crate::support::terraform::repo_root;
use crate::support::{Terraform, Workdir, hcl};
use usualstore_testpg::Cluster;

fn servers_tfvars(clusters: [&Cluster; 2], tenants: &BTreeMap<String, &str>) -> String {
    let mut text = String::from("servers = {\n");
    for (name, cluster) in ["primary", "secondary"].iter().zip(clusters) {
        text.push_str(&format!(
            "  {name} = {{ host = \"127.0.0.1\", port = {}, username = {}, password = {}, sslmode = \"disable\" }}\n",
            cluster.port(),
            hcl::string(cluster.superuser()),
            hcl::string(cluster.superuser_password()),
        ));
    }
    text.push_str("}\ntenants = {\n");
    for (database, server) in tenants {
        text.push_str(&format!(
            "  {database} = {{ tenant_name = \"Tenant {database}\", plan = \"starter\", server = \"{server}\" }}\n"
        ));
    }
    text.push_str("}\n");
    text
}

fn database_exists(cluster: &Cluster, database: &str) -> bool {
    let client = block_on(cluster.connect("postgres")).expect("connect");
    block_on(client.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        &[&database],
    ))
    .expect("query")
    .get(0)
}

fn count_widgets(dsn: &str) -> i64 {
    let config = tokio_postgres::Config::from_str(dsn).expect("DSN parses");
    Db::with_config(config)
        .query_one("SELECT count(*) FROM public.widgets", &[])
        .get(0)
}

fn dsns(workdir: &Workdir) -> BTreeMap<String, String> {
    let outputs = workdir.output_json();
    let map = outputs["api_dsns"]["value"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    map.into_iter()
        .map(|(name, dsn)| (name, dsn.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Runs a PostgreSQL client program of the cluster's installation as its superuser.
fn pg_tool(cluster: &Cluster, program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(cluster.bin_dir().join(program));
    command.args(args).envs(cluster.pg_env());
    command
}

/// Two tenants on two servers (examples/multi-server), then one moved from the first server to the
/// second as docs/guides/several-servers.md describes, one named step at a time.
struct TwoServers<'t> {
    terraform: &'t Terraform,
    primary: Cluster,
    secondary: Cluster,
    /// On the primary server first, moved to the secondary.
    a: String,
    /// On the secondary server.
    b: String,
    placement: BTreeMap<String, &'static str>,
    workdir: Workdir,
}

const VARS: [&str; 3] = [
    "-var-file=servers.tfvars",
    "-var",
    "deletion_protection=false",
];

impl<'t> TwoServers<'t> {
    fn apply(terraform: &'t Terraform) -> Self {
        let primary = Cluster::start().expect("primary server");
        let secondary = Cluster::start().expect("secondary server");
        let a = pg::unique_name("east");
        let b = pg::unique_name("west");
        let placement = BTreeMap::from([(a.clone(), "primary"), (b.clone(), "secondary")]);
        let example = std::fs::read_to_string(repo_root().join("examples/multi-server/main.tf"))
            .expect("example");
        let workdir = Workdir::without_cluster(terraform, &example);
        let servers = TwoServers {
            terraform,
            primary,
            secondary,
            a,
            b,
            placement,
            workdir,
        };
        servers.write_tfvars();
        servers.workdir.init();
        servers.workdir.apply(&VARS);
        servers.assert_no_changes("after apply");
        servers
    }

    fn write_tfvars(&self) {
        let tfvars = servers_tfvars([&self.primary, &self.secondary], &self.placement);
        std::fs::write(self.workdir.path().join("servers.tfvars"), tfvars).expect("tfvars");
    }

    fn assert_no_changes(&self, when: &str) {
        assert!(
            self.workdir.plan_detailed_with(&VARS) == crate::support::Plan::NoChanges,
            "plan {when} has changes"
        );
    }

    fn each_tenant_is_on_its_server_only(&self) {
        let (a, b) = (&self.a, &self.b);
        assert!(
            database_exists(&self.primary, a) && !database_exists(&self.secondary, a),
            "{a} is not only on primary"
        );
        assert!(
            database_exists(&self.secondary, b) && !database_exists(&self.primary, b),
            "{b} is not only on secondary"
        );
        let before = dsns(&self.workdir);
        assert!(
            before[a].contains(&format!("port='{}'", self.primary.port())),
            "{a}'s DSN points elsewhere"
        );
        assert!(
            before[b].contains(&format!("port='{}'", self.secondary.port())),
            "{b}'s DSN points elsewhere"
        );
    }

    fn the_tenant_to_move_holds_rows(&self) {
        let client = block_on(self.primary.connect(&self.a)).expect("connect");
        block_on(client.batch_execute(
            "INSERT INTO public.widgets (name, price_cents, inventory_level) \
             SELECT 'moved ' || g, 100, 3 FROM generate_series(1, 6) g",
        ))
        .expect("rows");
    }

    /// Forget the tenant, create it on the other server.
    fn move_recreates_the_tenant_on_the_second_server(&mut self) {
        let a = self.a.clone();
        self.workdir.run(&[
            "state",
            "rm",
            &format!("usualstore_tenant_user.primary_api[\"{a}\"]"),
            &format!("usualstore_tenant.primary[\"{a}\"]"),
        ]);
        self.placement.insert(a.clone(), "secondary");
        self.write_tfvars();
        self.workdir.apply(&VARS);
        assert!(
            database_exists(&self.secondary, &a),
            "{a} was not created on secondary"
        );
    }

    /// Copy the data with pg_dump and pg_restore, as the guide says.
    fn rows_are_copied_and_served_from_the_new_server(&self) {
        let dump_arg = self.workdir.path().join("move.dump").display().to_string();
        let dumped = pg_tool(
            &self.primary,
            "pg_dump",
            &[
                "--format=custom",
                "--data-only",
                "--exclude-table-data=public.statuses",
                "--exclude-table-data=public.transaction_statuses",
                "--exclude-table-data=public.usualstore_schema_migrations",
                "--file",
                &dump_arg,
                "--dbname",
                &self.a,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run pg_dump");
        assert!(
            dumped.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&dumped.stderr)
        );
        let restored = pg_tool(
            &self.secondary,
            "pg_restore",
            &[
                "--data-only",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--dbname",
                &self.a,
                &dump_arg,
            ],
        )
        .stdin(Stdio::null())
        .output()
        .expect("run pg_restore");
        assert!(
            restored.status.success(),
            "pg_restore: {}",
            String::from_utf8_lossy(&restored.stderr)
        );
        let after = dsns(&self.workdir);
        assert!(after[&self.a].contains(&format!("port='{}'", self.secondary.port())));
        assert_eq!(
            count_widgets(&after[&self.a]),
            6,
            "rows on the new server, through the new DSN"
        );
        self.assert_no_changes("after the move");
    }

    /// Import the old copy into a scratch configuration for the old server, then destroy it.
    fn the_old_copy_is_decommissioned(&self) {
        let (a, primary) = (&self.a, &self.primary);
        let scratch = Workdir::without_cluster(
            self.terraform,
            &format!(
                "{}resource \"usualstore_tenant\" \"old\" {{\n  database_name = {}\n  tenant_name = \"Tenant {a}\"\n  \
                 plan = \"starter\"\n  deletion_protection = false\n}}\n",
                hcl::provider_config(&format!(
                    "  host = \"127.0.0.1\"\n  port = {}\n  username = {}\n  password = {}\n  sslmode = \"disable\"\n",
                    primary.port(),
                    hcl::string(primary.superuser()),
                    hcl::string(primary.superuser_password()),
                )),
                hcl::string(a),
            ),
        );
        scratch.init();
        scratch.import("usualstore_tenant.old", a);
        scratch.apply(&[]);
        scratch.destroy();
        assert!(!database_exists(primary, a), "the old copy survived");
    }

    fn destroy_leaves_nothing_on_either_server(self) {
        let mut destroy = vec!["destroy", "-no-color", "-input=false", "-auto-approve"];
        destroy.extend(VARS);
        self.workdir.run(&destroy);
        for (cluster, name) in [(&self.primary, "primary"), (&self.secondary, "secondary")] {
            let client = block_on(cluster.connect("postgres")).expect("connect");
            let left: i64 = block_on(client.query_one(
                "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'east%' OR datname LIKE 'west%') \
                      + (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'east%' OR rolname LIKE 'west%')",
                &[],
            ))
            .expect("query")
            .get(0);
            assert_eq!(left, 0, "objects left on {name}");
        }
        self.primary.stop().expect("stop primary");
        self.secondary.stop().expect("stop secondary");
    }
}

fn tenants_spread_and_moved(terraform: &Terraform) {
    let mut servers = TwoServers::apply(terraform);
    servers.each_tenant_is_on_its_server_only();
    servers.the_tenant_to_move_holds_rows();
    servers.move_recreates_the_tenant_on_the_second_server();
    servers.rows_are_copied_and_served_from_the_new_server();
    servers.the_old_copy_is_decommissioned();
    servers.destroy_leaves_nothing_on_either_server();
}

#[test]
fn two_servers_with_terraform_1_11() {
    crate::support::with_terraform(Terraform::v1_11, "1.11", tenants_spread_and_moved);
}

#[test]
fn two_servers_with_terraform_1_0() {
    crate::support::with_terraform(Terraform::v1_0, "1.0.3", tenants_spread_and_moved);
}
