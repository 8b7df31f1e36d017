//! Start-up cost of the provider as Terraform pays it: process start → handshake line on stdout → mutual-TLS
//! connection → GetProviderSchema answered. Terraform starts the provider several times per command (validate,
//! plan, apply each get a fresh process), so this is paid over and over.
//!
//! ```sh
//! cargo build --release -p terraform-provider-usualstore --example startup_time
//! target/release/examples/startup_time --provider target/release/terraform-provider-usualstore --runs 20
//! ```
//!
//! Prints one line per run, then a summary line `startup runs=N handshake_ms_median=… schema_ms_median=…` that
//! `bench/run.sh` reads. The client side mirrors Terraform's: a self-signed ECDSA P-521 CA certificate passed in
//! `PLUGIN_CLIENT_CERT`, the server certificate from the handshake line pinned.

#[path = "../tests/acceptance/plugin_client/mod.rs"]
mod plugin_client;
#[path = "../src/proto.rs"]
#[allow(dead_code)]
mod proto;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use plugin_client::{ClientIdentity, channel, terraform_like_identity, tls_client};
use proto::plugin::Empty;
use proto::plugin::grpc_controller_client::GrpcControllerClient;
use proto::tfplugin6::provider_client::ProviderClient;
use rustls::pki_types::CertificateDer;

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
const PROVIDER_BINARY: &str = "terraform-provider-usualstore";
const USAGE: &str = "usage: startup_time [--provider PATH] [--runs N]";

struct Args {
    provider: PathBuf,
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut provider = None;
    let mut runs = 20;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--provider" => provider = Some(PathBuf::from(args.next().context(USAGE)?)),
            "--runs" => {
                runs = args
                    .next()
                    .context(USAGE)?
                    .parse()
                    .context("--runs takes a positive number")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if runs == 0 {
        bail!("--runs takes a positive number");
    }
    // Examples live in target/<profile>/examples/, the provider binary one level up.
    let provider = match provider {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join(PROVIDER_BINARY))
            .context("cannot locate the provider binary; pass --provider")?,
    };
    Ok(Args { provider, runs })
}

/// Kills the provider if a run fails half-way, so no process outlives the benchmark.
struct Plugin {
    child: Child,
    socket: PathBuf,
    server_cert: CertificateDer<'static>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the provider and reads its handshake line (blocking: this is what go-plugin waits for too).
fn start(provider: &Path, identity: &ClientIdentity) -> anyhow::Result<Plugin> {
    let mut child = Command::new(provider)
        .env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_CLIENT_CERT", &identity.pem)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", provider.display()))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the handshake line")?;
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    if fields.len() != 6 || fields[..3] != ["1", "6", "unix"] || fields[4] != "grpc" {
        bail!("unexpected handshake line {line:?}");
    }
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .context("server certificate in the handshake line")?;
    Ok(Plugin {
        socket: PathBuf::from(fields[3]),
        server_cert: CertificateDer::from(der),
        child,
    })
}

struct Timing {
    handshake: Duration,
    schema: Duration,
}

async fn one_run(provider: &Path, identity: &ClientIdentity) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut plugin = start(provider, identity)?;
    let handshake = started.elapsed();
    let tls = tls_client(&plugin.server_cert, Some(identity)).map_err(anyhow::Error::msg)?;
    let channel = channel(&plugin.socket, tls)
        .await
        .map_err(anyhow::Error::msg)
        .context("connecting to the provider")?;
    let schema = ProviderClient::new(channel.clone())
        .get_provider_schema(proto::tfplugin6::get_provider_schema::Request {})
        .await
        .context("GetProviderSchema")?
        .into_inner();
    let schema_time = started.elapsed();
    if !schema.resource_schemas.contains_key("usualstore_tenant") {
        bail!("GetProviderSchema answered without usualstore_tenant");
    }
    // Leave the way Terraform does, so no process lingers into the next run.
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .context("Shutdown")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while plugin.child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            bail!("provider still running 10 s after Shutdown");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Timing {
        handshake,
        schema: schema_time,
    })
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !args.provider.is_file() {
        bail!("no provider binary at {}", args.provider.display());
    }
    // Key generation is Terraform's cost, not the provider's: done once, outside the clock.
    let identity = terraform_like_identity().map_err(anyhow::Error::msg)?;
    let mut handshakes = Vec::with_capacity(args.runs);
    let mut schemas = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        let timing = one_run(&args.provider, &identity)
            .await
            .with_context(|| format!("run {run}"))?;
        println!(
            "run {run:>3}: handshake {:7.2} ms, GetProviderSchema answered {:7.2} ms",
            ms(timing.handshake),
            ms(timing.schema)
        );
        handshakes.push(ms(timing.handshake));
        schemas.push(ms(timing.schema));
    }
    handshakes.sort_by(f64::total_cmp);
    schemas.sort_by(f64::total_cmp);
    println!(
        "startup runs={} handshake_ms_median={:.1} handshake_ms_p90={:.1} schema_ms_min={:.1} \
         schema_ms_median={:.1} schema_ms_p90={:.1} schema_ms_max={:.1}",
        args.runs,
        percentile(&handshakes, 50.0),
        percentile(&handshakes, 90.0),
        percentile(&schemas, 0.0),
        percentile(&schemas, 50.0),
        percentile(&schemas, 90.0),
        percentile(&schemas, 100.0),
    );
    Ok(())
}
