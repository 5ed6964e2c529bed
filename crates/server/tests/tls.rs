//! The memcache protocol over TLS (`[server.tls]`), with a certificate generated for each test.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::{Client, PATIENCE, POLL_INTERVAL, Server, set_request, value_reply};
use tempfile::TempDir;

/// A self-signed certificate for `localhost`, written as PEM files.
struct Certificate {
    dir: TempDir,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl Certificate {
    fn generate() -> Certificate {
        let dir = TempDir::new().expect("temp dir");
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
        std::fs::write(dir.path().join("cert.pem"), generated.cert.pem()).expect("cert");
        std::fs::write(
            dir.path().join("key.pem"),
            generated.key_pair.serialize_pem(),
        )
        .expect("key");
        Certificate {
            dir,
            der: generated.cert.der().clone(),
        }
    }

    fn cert_file(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// A `[server.tls]` table on a free loopback port, with `extra` keys.
    fn config(&self, extra: &str) -> String {
        format!(
            "[server.tls]\nlisten = \"127.0.0.1:0\"\ncert_file = {:?}\nkey_file = {:?}\n{extra}\n",
            self.cert_file(),
            self.dir.path().join("key.pem")
        )
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der.clone())
            .expect("trust the test certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// The address the server logged for its TLS listener.
fn tls_addr(server: &Server) -> SocketAddr {
    server.logged_address("lanner TLS listening on ")
}

/// A memcache client speaking TLS.
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buffered: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, certificate: &Certificate) -> TlsClient {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(PATIENCE)).expect("read timeout");
        let name = ServerName::try_from("localhost").expect("server name");
        let connection =
            ClientConnection::new(certificate.client_config(), name).expect("TLS client");
        TlsClient {
            stream: StreamOwned::new(connection, tcp),
            buffered: Vec::new(),
        }
    }

    /// Sends `request` and asserts the reply is exactly `expected`.
    fn expect(&mut self, request: &[u8], expected: &[u8]) {
        self.stream.write_all(request).expect("TLS write");
        self.stream.flush().expect("TLS flush");
        while self.buffered.len() < expected.len() {
            let mut chunk = [0u8; 16 * 1024];
            let read = self.stream.read(&mut chunk).expect("TLS read");
            assert!(
                read > 0,
                "closed; got {:?}",
                String::from_utf8_lossy(&self.buffered)
            );
            self.buffered.extend_from_slice(&chunk[..read]);
        }
        let got: Vec<u8> = self.buffered.drain(..expected.len()).collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }
}

#[test]
fn set_and_get_over_tls_share_the_queues_of_the_plaintext_port() {
    let certificate = Certificate::generate();
    let server = Server::start_with_config(&certificate.config(""));
    let mut secure = TlsClient::connect(tls_addr(&server), &certificate);
    secure.expect(&set_request("q", b"secret"), b"STORED\r\n");
    let mut plain = server.connect();
    plain.set("q", b"plain");
    secure.expect(b"get q\r\n", &value_reply("q", b"secret"));
    secure.expect(b"get q/open\r\n", &value_reply("q", b"plain"));
    secure.expect(b"get q/close\r\n", b"END\r\n");
    plain.expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_dropped_and_the_server_keeps_serving() {
    let certificate = Certificate::generate();
    let server = Server::start_with_config(&certificate.config(""));
    let addr = tls_addr(&server);
    let mut confused = TcpStream::connect(addr).expect("connect");
    confused
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    confused.write_all(b"get q\r\n").expect("send");
    let mut answer = Vec::new();
    match confused.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    assert!(
        !answer.windows(3).any(|window| window == b"END"),
        "a plaintext request was served: {answer:?}"
    );
    let mut secure = TlsClient::connect(addr, &certificate);
    secure.expect(&set_request("q", b"x"), b"STORED\r\n");
    server
        .connect()
        .expect(b"get q\r\n", &value_reply("q", b"x"));
}

#[test]
fn a_client_that_never_completes_the_handshake_is_disconnected() {
    let certificate = Certificate::generate();
    let config = certificate.config("handshake_timeout = \"200ms\"");
    let server = Server::start_with_config(&config);
    let mut silent = Client::connect(tls_addr(&server));
    assert!(silent.is_closed(), "a silent client kept its connection");
    server.connect().expect(b"get q\r\n", b"END\r\n");
}

#[test]
fn authentication_and_access_rules_apply_over_tls() {
    let certificate = Certificate::generate();
    // The hash of the password "x".
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$B/h37Eg2wK2/cTlNlhG0uA$DsfhVZ7tHyHOTNR7CM+5XyKY+YmMadXuy7eyUhCJwnQ";
    let users = format!("[users.app]\npassword_hash = \"{hash}\"\nproduce = [\"q\"]\n");
    let server = Server::start_with_config(&format!("{}{users}", certificate.config("")));
    let mut secure = TlsClient::connect(tls_addr(&server), &certificate);
    secure.expect(b"get q\r\n", b"CLIENT_ERROR unauthenticated\r\n");
    secure.expect(&set_request("auth", b"app x"), b"STORED\r\n");
    secure.expect(&set_request("q", b"x"), b"STORED\r\n");
    secure.expect(b"get q\r\n", b"CLIENT_ERROR access denied\r\n");
}

#[test]
fn a_missing_certificate_stops_startup_with_a_clear_message() {
    let temp = TempDir::new().expect("temp dir");
    let config = temp.path().join("lanner.toml");
    let missing = temp.path().join("missing.pem");
    std::fs::write(
        &config,
        format!("[server.tls]\nlisten = \"127.0.0.1:0\"\ncert_file = {missing:?}\nkey_file = {missing:?}\n"),
    )
    .expect("config");
    let log = Server::try_start_with(&temp.path().join("data"), Some(&config), &[])
        .err()
        .expect("lanner started without its certificate");
    assert!(
        log.contains("cert_file") && log.contains("missing.pem"),
        "{log}"
    );
}

#[test]
fn openssl_s_client_can_set_and_get() {
    if Command::new("openssl").arg("version").output().is_err() {
        // .ci/run installs openssl: a skip there would hide the test.
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is not installed under CI"
        );
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let certificate = Certificate::generate();
    let server = Server::start_with_config(&certificate.config(""));
    let output = s_client(
        tls_addr(&server),
        &certificate.cert_file(),
        b"set q 0 0 5\r\nhello\r\nget q\r\nquit\r\n",
    );
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains("STORED\r\nVALUE q 0 5\r\nhello\r\nEND\r\n"),
        "s_client printed {text:?}"
    );
}

/// Runs `openssl s_client -quiet` against `addr`, feeding it `input`; returns its stdout once
/// the server closed the connection (bounded by PATIENCE).
fn s_client(addr: SocketAddr, ca_file: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error"])
        .args(["-connect", &addr.to_string(), "-servername", "localhost"])
        .arg("-CAfile")
        .arg(ca_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feed s_client");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            drop(child.kill());
            panic!("openssl s_client did not finish");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut output)
        .expect("read s_client output");
    output
}
