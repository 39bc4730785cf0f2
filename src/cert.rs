//! `switchboard cert`: a local certificate authority and a certificate for
//! this machine (localhost, 127.0.0.1, ::1 and its LAN addresses), so that
//! browsers accept HTTPS/WSS from a development server once the CA is trusted.
//!
//! Writes the file names the demo systems expect: `cert.crt`/`cert.key` (the
//! npm mkcert layout of `offers`) and `ssl/server.cert`/`ssl/server.key`
//! (`flutter`). An existing CA in the directory is reused, so a CA trusted
//! once stays trusted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::transport::tls::TlsFiles;

/// What `generate` wrote.
#[derive(Debug)]
pub struct Generated {
    /// The CA certificate to trust.
    pub ca_cert: PathBuf,
    /// Whether the CA was created now (false: reused).
    pub ca_created: bool,
    /// Leaf certificate and key (`cert.crt`/`cert.key`).
    pub leaf: TlsFiles,
    /// Names and addresses the leaf is valid for.
    pub names: Vec<String>,
}

/// Names the certificate covers: localhost, loopback, LAN addresses, extras.
pub fn machine_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for iface in ifaces.into_iter().filter(|i| !i.is_loopback()) {
            let ip = iface.ip();
            let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !link_local {
                names.push(ip.to_string());
            }
        }
    }
    for n in extra {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// Creates (or reuses) `dir/ca.{crt,key}` and writes a fresh leaf for `names`.
pub fn generate(dir: &Path, names: &[String]) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(dir.join("ssl")).with_context(|| format!("creating {}", dir.join("ssl").display()))?;
    let (ca_cert_path, ca_key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
    let ca_created = !(ca_cert_path.exists() && ca_key_path.exists());
    let (ca_pem, ca_key) = if ca_created {
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "switchboard local development CA");
        dn.push(DnType::OrganizationName, "switchboard dev");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        (params.not_before, params.not_after) = validity(3650);
        let cert = params.self_signed(&key).context("signing the CA certificate")?;
        write(&ca_cert_path, &cert.pem())?;
        write_secret(&ca_key_path, &key.serialize_pem())?;
        (cert.pem(), key)
    } else {
        let pem =
            std::fs::read_to_string(&ca_cert_path).with_context(|| format!("reading {}", ca_cert_path.display()))?;
        let key_pem =
            std::fs::read_to_string(&ca_key_path).with_context(|| format!("reading {}", ca_key_path.display()))?;
        let key = KeyPair::from_pem(&key_pem).with_context(|| format!("{} is not a PEM key", ca_key_path.display()))?;
        (pem, key)
    };
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .with_context(|| format!("{} is not a usable CA certificate", ca_cert_path.display()))?;

    let leaf_key = KeyPair::generate().context("generating the certificate key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "switchboard development certificate");
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .context("a certificate name is not a valid DNS name or IP address")?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    (params.not_before, params.not_after) = validity(825);
    let leaf = params.signed_by(&leaf_key, &issuer).context("signing the certificate")?;
    let chain = format!("{}{}", leaf.pem(), ca_pem);
    let leaf_files = TlsFiles { cert: dir.join("cert.crt"), key: dir.join("cert.key") };
    write(&leaf_files.cert, &chain)?;
    write_secret(&leaf_files.key, &leaf_key.serialize_pem())?;
    write(&dir.join("ssl/server.cert"), &chain)?;
    write_secret(&dir.join("ssl/server.key"), &leaf_key.serialize_pem())?;
    Ok(Generated { ca_cert: ca_cert_path, ca_created, leaf: leaf_files, names: names.to_vec() })
}

/// From yesterday (clock skew) for `days` days.
fn validity(days: i64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = time::OffsetDateTime::now_utc();
    (now - time::Duration::days(1), now + time::Duration::days(days))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Writes a private key readable by the owner only.
fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    write(path, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting permissions of {}", path.display()))?;
    }
    Ok(())
}

/// How to make browsers trust the CA, for the user to read.
pub fn trust_instructions(ca: &Path) -> String {
    let ca = ca.display();
    format!(
        "To make browsers trust it, add the CA certificate {ca} once:\n\
         - Debian/Ubuntu: sudo cp {ca} /usr/local/share/ca-certificates/switchboard-dev-ca.crt && sudo update-ca-certificates\n\
         - Chrome/Chromium (Linux): Settings > Privacy and security > Security > Manage certificates > Authorities > Import\n\
         - Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import\n\
         - macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}\n\
         - Windows: certutil -addstore -f ROOT {ca}\n\
         Keep ca.key private: anyone holding it can impersonate any site to this machine's browsers."
    )
}
