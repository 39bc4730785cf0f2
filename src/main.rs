//! The `switchboard` binary: parse flags, set up logging, run the server
//! until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use switchboard::auth::{Claims, Signer};
use switchboard::config::{Cli, Cmd, Config, TokenArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("switchboard=info,warn"));
    let color = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(color).with_writer(std::io::stderr).init();
    match cli.command.unwrap_or(Cmd::Serve) {
        Cmd::Serve => {
            let config = Config::from_args(&cli.serve)?;
            switchboard::server::run(config, shutdown_signal()).await
        }
        Cmd::Cert(args) => {
            let names = switchboard::cert::machine_names(&args.names);
            let made = switchboard::cert::generate(&args.dir, &names)?;
            let ca = if made.ca_created { "created" } else { "reused" };
            println!("CA certificate ({ca}): {}", made.ca_cert.display());
            println!("certificate: {} (key {})", made.leaf.cert.display(), made.leaf.key.display());
            println!("also as ssl/server.cert and ssl/server.key; valid for: {}", made.names.join(", "));
            println!(
                "serve with: switchboard --tls-cert {} --tls-key {}",
                made.leaf.cert.display(),
                made.leaf.key.display()
            );
            println!();
            println!("{}", switchboard::cert::trust_instructions(&made.ca_cert));
            Ok(())
        }
        Cmd::Token(args) => {
            println!("{}", token(&args)?);
            Ok(())
        }
    }
}

/// The access token `switchboard token` prints.
fn token(args: &TokenArgs) -> anyhow::Result<String> {
    let signer = match (&args.private_key, &args.auth_secret) {
        (Some(path), _) => {
            let pem = std::fs::read(path).with_context(|| format!("reading the private key {}", path.display()))?;
            Signer::private_key_pem(&pem).with_context(|| format!("--private-key {}", path.display()))?
        }
        (None, Some(secret)) => Signer::secret(secret.expose()),
        (None, None) => {
            let from_file = match &args.config {
                Some(path) => switchboard::config::file_auth_secret(path)?,
                None => None,
            };
            let secret = from_file.context(
                "no key to sign with: give --auth-secret SECRET (or SWITCHBOARD_AUTH_SECRET, or auth_secret in \
                 --config FILE), as the server has it, or --private-key FILE",
            )?;
            Signer::secret(secret.expose())
        }
    };
    signer.mint(&Claims::new(&args.sub, &args.rooms, args.ttl, std::time::SystemTime::now()))
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from now on — before the server
/// starts, so a signal sent as soon as it listens is not fatal — and returns a
/// future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, what: &'static str| {
            let stream = signal(kind);
            async move {
                match stream {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for {what}");
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let (int, term) = (listen(SignalKind::interrupt(), "Ctrl-C"), listen(SignalKind::terminate(), "SIGTERM"));
        async move {
            tokio::select! { _ = int => {}, _ = term => {} }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
