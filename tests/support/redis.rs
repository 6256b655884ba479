//! A real `redis-server` on a free loopback port, stopped when dropped.
//! (`./scripts/bootstrap test` installs it when missing.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
    tls: bool,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        Self::start_on(port).await
    }

    /// Start (again) on a given port, e.g. to bring a stopped server back.
    pub async fn start_on(port: u16) -> RedisServer {
        let server = RedisServer {
            child: spawn(&["--port", &port.to_string()]),
            port,
            tls: false,
        };
        server.wait_listening().await;
        server
    }

    async fn wait_listening(&self) {
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}/0", self.port)
        } else {
            format!("redis://127.0.0.1:{}/0", self.port)
        }
    }

    /// A TLS-only server (`--port 0 --tls-port`) with a certificate for
    /// `127.0.0.1` signed by a throwaway CA written to `dir/ca.pem` (point
    /// a client's `SSL_CERT_FILE` at it). Certificates come from the
    /// `openssl` program, as an operator would make them.
    pub async fn start_tls(dir: &std::path::Path) -> RedisServer {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl runs (./scripts/bootstrap test installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=llmo-test-ca",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "srv.key",
                    "-out",
                    "srv.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let child = spawn(&[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path("srv.pem"),
            "--tls-key-file",
            &path("srv.key"),
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]);
        let server = RedisServer {
            child,
            port,
            tls: true,
        };
        server.wait_listening().await;
        server
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` on loopback with no persistence, plus `args`.
fn spawn(args: &[&str]) -> Child {
    Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs (./scripts/bootstrap test installs it)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
