//! A real SMTP server the tests start: it speaks enough of the protocol for a client to hand
//! it mail (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps every message it
//! accepts, with the user the client authenticated as.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// `user:password` the connection authenticated with (AUTH PLAIN), if it did.
    pub authenticated: Option<String>,
    /// Headers and body, as sent (dot-unstuffed).
    pub data: String,
}

impl Mail {
    /// A header's value (the first line of it).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.to_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let shared = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mails = shared.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ready\r\n").await;
                    let (mut from, mut to) = (String::new(), Vec::new());
                    let mut authenticated: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                            b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("AUTH PLAIN ") {
                            // The initial response is base64 of "\0user\0password".
                            use base64::Engine as _;
                            let decoded = base64::engine::general_purpose::STANDARD
                                .decode(line[11..].trim())
                                .unwrap_or_default();
                            let parts: Vec<String> =
                                String::from_utf8_lossy(&decoded).split('\0').map(str::to_owned).collect();
                            authenticated = parts.get(1..3).map(|p| p.join(":"));
                            b"235 2.7.0 authenticated\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            from = line[10..]
                                .trim()
                                .trim_matches(['<', '>'])
                                .split('>')
                                .next()
                                .unwrap_or("")
                                .to_owned();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                            b"250 OK\r\n"
                        } else if upper == "DATA" {
                            let _ = write.write_all(b"354 end with .\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                                data.push('\n');
                            }
                            let mail = Mail {
                                from: std::mem::take(&mut from),
                                to: std::mem::take(&mut to),
                                authenticated: authenticated.clone(),
                                data,
                            };
                            mails.lock().unwrap().push(mail);
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { addr, mails }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}
