//! Test certificates: a throwaway certificate authority and the rustls configs that use it.
//!
//! [`TestCa::new`] generates a self-signed CA with rcgen (ECDSA P-256). From it a test issues
//! server certificates for the names it connects to (`localhost`, `127.0.0.1`; IP literals
//! become IP SANs) and client certificates for mutual TLS. The server configs use the ring
//! provider explicitly, TLS 1.2/1.3, and ALPN `http/1.1`; the client-auth variant requires a
//! client certificate chaining to the same CA. A client trusts the CA through
//! [`TestCa::ca_pem`] (for example `TlsConfig::with_extra_ca_pem` in nova-core).
//!
//! Certificate generation cannot fail on network input, so the constructors panic on an rcgen
//! or rustls error: this is test-only code, and such an error is a bug in the test setup.

use std::{fmt, sync::Arc};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A self-signed certificate authority for tests.
pub struct TestCa {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A certificate and its private key, both PEM encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate chain, PEM: the leaf, then the CA.
    pub cert_chain_pem: String,
    /// The PKCS#8 private key, PEM.
    pub key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_chain_pem", &self.cert_chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl IssuedCert {
    /// The chain as DER (leaf first) and the private key, for rustls.
    pub fn to_rustls(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            self.chain.clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestCa {
    /// Generates a new CA (`CN=nova test CA`).
    ///
    /// # Panics
    /// If rcgen fails to generate the key or certificate (a bug, not an input error).
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|e| panic!("CA params: {e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "nova test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
        let cert = params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("CA certificate: {e}"));
        Self {
            ca_der: cert.der().clone(),
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate, PEM encoded: what a client must trust.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER encoded.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    fn issue(&self, mut params: CertificateParams, common_name: &str) -> IssuedCert {
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("leaf key: {e}"));
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("leaf certificate: {e}"));
        IssuedCert {
            cert_chain_pem: format!("{}{}", cert.pem(), self.ca_pem),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone(), self.ca_der.clone()],
            key_der: key.serialize_der(),
        }
    }

    /// Issues a server certificate valid for `names` (DNS names or IP literals).
    ///
    /// # Panics
    /// If a name is not a valid DNS name or IP address.
    pub fn issue_server_cert(&self, names: &[&str]) -> IssuedCert {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params =
            CertificateParams::new(sans).unwrap_or_else(|e| panic!("server names: {e}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, names.first().copied().unwrap_or("nova test server"))
    }

    /// Issues a client certificate (`CN=name`) for mutual TLS; returns
    /// `(cert_chain_pem, key_pem)`.
    pub fn issue_client_identity(&self, name: &str) -> (String, String) {
        let cert = self.issue_client_cert(name);
        (cert.cert_chain_pem, cert.key_pem)
    }

    /// Issues a client certificate (`CN=name`) for mutual TLS.
    ///
    /// # Panics
    /// If rcgen fails (a bug, not an input error).
    pub fn issue_client_cert(&self, name: &str) -> IssuedCert {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|e| panic!("client params: {e}"));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, name)
    }

    /// A rustls server config presenting a fresh certificate for `names`, ALPN `http/1.1`.
    ///
    /// # Panics
    /// As [`TestCa::issue_server_cert`].
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        self.build_server_config(names, false)
    }

    /// Like [`TestCa::server_config`], and requires a client certificate issued by this CA.
    ///
    /// # Panics
    /// As [`TestCa::issue_server_cert`].
    pub fn server_config_requiring_client_auth(&self, names: &[&str]) -> Arc<ServerConfig> {
        self.build_server_config(names, true)
    }

    /// [`TestCa::server_config`] as a `TlsAcceptor` (for `ServerOptions::tls`).
    pub fn acceptor(&self, names: &[&str]) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config(names))
    }

    /// [`TestCa::server_config_requiring_client_auth`] as a `TlsAcceptor`.
    pub fn acceptor_requiring_client_auth(&self, names: &[&str]) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config_requiring_client_auth(names))
    }

    fn build_server_config(&self, names: &[&str], client_auth: bool) -> Arc<ServerConfig> {
        let (chain, key) = self.issue_server_cert(names).to_rustls();
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("TLS versions: {e}"));
        let builder = if client_auth {
            let mut roots = RootCertStore::empty();
            roots
                .add(self.ca_der.clone())
                .unwrap_or_else(|e| panic!("CA root: {e}"));
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap_or_else(|e| panic!("client verifier: {e}"));
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .unwrap_or_else(|e| panic!("server certificate: {e}"));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
