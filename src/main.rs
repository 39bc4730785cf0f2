//! The `switchboard` binary: parse flags, set up logging, run the server
//! until SIGINT or SIGTERM.

use clap::Parser;
use switchboard::config::{Cli, Cmd, Config};
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
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
