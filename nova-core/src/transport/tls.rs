//! TLS for `wss://`: building the rustls client config and explaining handshake failures.
//!
//! The trust store is the configured [`TlsRoots`] plus every certificate found in
//! [`TlsConfig::extra_ca_pem`]; a client identity, when set, is offered for mutual TLS. The
//! crypto provider is the process-wide default when the application installed one
//! (`rustls::crypto::CryptoProvider::install_default`), else the one nova-core's feature names:
//! `ring` (the default) or `aws-lc-rs` (ring when both are on); it is passed explicitly, so
//! no process-wide default is needed. Protocol versions are rustls' safe defaults (TLS 1.2 and 1.3),
//! and ALPN offers `http/1.1`, the protocol WebSocket upgrades from. The server name checked
//! (and sent as SNI) is the URL host; an IP literal is checked against IP SANs.
//!
//! A failed handshake is reported as [`TransportError::Tls`] with a plain reason such as
//! `certificate not trusted: UnknownIssuer`, derived from the `rustls::Error` that
//! tokio-rustls wraps in its `io::Error`.

use std::{io, sync::Arc};

use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{TlsConfig, TlsRoots, TransportError};

/// Builds the rustls client config described by `tls`.
///
/// The default configuration (Mozilla's roots, no extra CA, no client identity) is built once
/// per process and shared: its root store and session-resumption cache cost about 22 KiB, which
/// every client would otherwise carry, `ws://` clients included (and sharing the cache lets one
/// client resume a TLS session another one opened).
pub(crate) fn build_client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TransportError> {
    #[cfg(feature = "webpki-roots")]
    if matches!(tls.roots, TlsRoots::WebPki)
        && tls.extra_ca_pem.is_empty()
        && tls.client_identity.is_none()
    {
        static SHARED: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
        if let Some(config) = SHARED.get() {
            return Ok(Arc::clone(config));
        }
        let config = build_uncached(tls)?;
        return Ok(Arc::clone(SHARED.get_or_init(|| config)));
    }
    build_uncached(tls)
}

/// The crypto provider: the process default if the application installed one, else the one
/// nova-core's `ring` or `aws-lc-rs` feature brings.
fn crypto_provider() -> Result<Arc<rustls::crypto::CryptoProvider>, TransportError> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return Ok(Arc::clone(installed));
    }
    #[cfg(feature = "ring")]
    let provider = Some(rustls::crypto::ring::default_provider());
    #[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
    let provider = Some(rustls::crypto::aws_lc_rs::default_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    let provider: Option<rustls::crypto::CryptoProvider> = None;
    provider.map(Arc::new).ok_or_else(|| {
        TransportError::invalid_config(
            "no TLS crypto provider: enable nova-core's `ring` or `aws-lc-rs` feature, or \
             install a process default with rustls::crypto::CryptoProvider::install_default",
        )
    })
}

fn build_uncached(tls: &TlsConfig) -> Result<Arc<ClientConfig>, TransportError> {
    let mut roots = RootCertStore::empty();
    match tls.roots {
        #[cfg(feature = "webpki-roots")]
        TlsRoots::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        #[cfg(not(feature = "webpki-roots"))]
        TlsRoots::WebPki => {
            return Err(TransportError::invalid_config(
                "TlsRoots::WebPki needs nova-core's `webpki-roots` feature",
            ));
        }
        #[cfg(not(feature = "native-roots"))]
        TlsRoots::Native => {
            return Err(TransportError::invalid_config(
                "TlsRoots::Native needs nova-core's `native-roots` feature",
            ));
        }
        #[cfg(feature = "native-roots")]
        TlsRoots::Native => {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() {
                let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
                return Err(TransportError::invalid_config(format!(
                    "no usable certificate in the operating system's store ({})",
                    errors.join("; ")
                )));
            }
            let (_added, _ignored) = roots.add_parsable_certificates(loaded.certs);
        }
        TlsRoots::None => {}
    }
    for (index, pem) in tls.extra_ca_pem.iter().enumerate() {
        let certs = parse_certs(pem, &format!("extra_ca_pem[{index}]"))?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                TransportError::invalid_config(format!(
                    "extra_ca_pem[{index}] holds an unusable CA certificate: {e}"
                ))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(TransportError::invalid_config(
            "no trusted root certificates: TlsRoots::None without extra_ca_pem",
        ));
    }

    let builder = ClientConfig::builder_with_provider(crypto_provider()?)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::invalid_config(format!("TLS provider: {e}")))?
        .with_root_certificates(roots);
    let mut config = match &tls.client_identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = parse_certs(&identity.cert_chain_pem, "client certificate chain")?;
            // The key's own parse error could quote key material: give a generic reason.
            let key =
                PrivateKeyDer::from_pem_slice(identity.key_pem().as_bytes()).map_err(|_| {
                    TransportError::invalid_config(
                        "client private key: no PEM private key (PKCS#8, PKCS#1 or SEC1) found",
                    )
                })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TransportError::invalid_config(format!("client identity: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Parses every certificate in a PEM string; at least one is required.
fn parse_certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TransportError::invalid_config(format!("{what}: invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TransportError::invalid_config(format!(
            "{what}: no PEM certificate found"
        )));
    }
    Ok(certs)
}

/// `true` when `error` wraps a `rustls::Error`.
pub(crate) fn is_tls_error(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

/// Explains a failed TLS handshake with `host`.
pub(crate) fn tls_error(host: &str, error: io::Error) -> TransportError {
    let reason = match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls_error) => explain(rustls_error),
        None => format!("connection failed during the TLS handshake: {error}"),
    };
    TransportError::Tls {
        host: host.to_owned(),
        reason,
        source: error,
    }
}

fn explain(error: &rustls::Error) -> String {
    use rustls::{AlertDescription as Alert, Error};
    match error {
        Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
            | CertificateError::InvalidPurpose => format!("certificate not trusted: {cert:?}"),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate not valid for this host name".to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet (check the clock)".to_owned()
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            other => format!("certificate not trusted: {other:?}"),
        },
        Error::AlertReceived(
            alert @ (Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::CertificateUnknown
            | Alert::AccessDenied),
        ) => format!(
            "server refused the handshake ({alert:?}): client certificate missing or not accepted"
        ),
        Error::AlertReceived(alert) => format!("server sent alert {alert:?}"),
        Error::NoApplicationProtocol => "no common ALPN protocol (http/1.1)".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_unknown_issuer() {
        let err = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let err = tls_error("localhost", err);
        assert_eq!(err.kind(), "tls");
        assert_eq!(
            err.to_string(),
            "TLS handshake with `localhost` failed: certificate not trusted: UnknownIssuer"
        );
    }

    #[test]
    fn rejects_empty_trust_and_bad_pem() {
        let none = TlsConfig::default().with_roots(TlsRoots::None);
        assert!(build_client_config(&none).is_err());
        let bad = none.with_extra_ca_pem("not a pem");
        let err = build_client_config(&bad).err();
        assert!(matches!(err, Some(TransportError::InvalidConfig { .. })));
    }

    #[cfg(feature = "webpki-roots")]
    #[test]
    fn builds_default_config() {
        let config = build_client_config(&TlsConfig::default());
        assert!(config.is_ok_and(|c| c.alpn_protocols == vec![b"http/1.1".to_vec()]));
    }
}
