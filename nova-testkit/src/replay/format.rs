//! The recording format: JSON Lines, one record per line, versioned.
//!
//! A recording is what a [`Relay`](super::Relay) saw on the wire, in the order it saw it:
//!
//! ```text
//! {"type":"header","format":"nova-recording","version":1,"url":"wss://www.deribit.com/ws/api/v2","recorded_at":"2026-12-02T16:07:06Z"}
//! {"type":"open","conn":0,"t_us":0,"target":"/ws/api/v2"}
//! {"type":"frame","conn":0,"t_us":812,"dir":"c2s","kind":"text","text":"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"public/hello\"}"}
//! {"type":"frame","conn":0,"t_us":1604,"dir":"s2c","kind":"text","text":"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}"}
//! {"type":"frame","conn":0,"t_us":2210,"dir":"s2c","kind":"binary","base64":"AAEC"}
//! {"type":"frame","conn":0,"t_us":9100,"dir":"s2c","kind":"drop"}
//! {"type":"open","conn":1,"t_us":31000,"target":"/ws/api/v2"}
//! ```
//!
//! - Line 1 is the **header**: `format` is always `"nova-recording"`, `version` is
//!   [`FORMAT_VERSION`] (a reader refuses any other), `url` is the upstream URL with its query
//!   string and user information replaced by `<redacted>`, `recorded_at` is UTC (RFC 3339), an
//!   optional free-text `note`, and `also`, the other upstream URLs the relay served (omitted
//!   when there are none).
//! - An **`open`** record starts a connection: `conn` numbers connections from 0 in accept
//!   order, `t_us` is microseconds since the recording started, `target` is the request path
//!   (query redacted), `subprotocol` the one agreed on (omitted if none). When the upstream
//!   refused the handshake, `refused` holds its HTTP status and the connection has no frames.
//! - A **`frame`** record is one WebSocket frame of connection `conn`: `t_us` is microseconds
//!   since *that connection* opened, `dir` is `c2s` (client to server) or `s2c`, and `kind` one
//!   of `text` (payload in `text`), `binary`, `ping`, `pong` (payload in `base64`, standard
//!   alphabet with padding, omitted when empty), `close` (`code` and `reason`, both omitted for
//!   a close frame without a code) or `drop` (the TCP connection ended without a close
//!   handshake).
//!
//! Records of concurrent connections may interleave; a reader groups them by `conn`. Unknown
//! fields are errors (a hand-edited fixture with a typo fails loudly), and every error names
//! its line.
//!
//! ```
//! use std::time::Duration;
//! use nova_testkit::replay::{Direction, Recording, RecordedFrame};
//!
//! let mut rec = Recording::new("wss://example.com/ws?key=secret");
//! assert_eq!(rec.header.url, "wss://example.com/ws?<redacted>");
//! let conn = rec.open("/ws", None);
//! rec.frame(conn, Duration::from_millis(1), Direction::ClientToServer, RecordedFrame::Text("hi".into()));
//! rec.frame(conn, Duration::from_millis(2), Direction::ServerToClient, RecordedFrame::close(1000, "bye"));
//! let text = rec.to_jsonl();
//! let back = Recording::parse(&text)?;
//! assert_eq!(back.records, rec.records);
//! assert!(Recording::parse("{\"type\":\"frame\"}").is_err()); // no header: line 1 says so
//! # Ok::<(), nova_testkit::replay::RecordingError>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::redact::{redact_url, rfc3339};

/// The version of the format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The value of the header's `format` field.
pub const FORMAT_NAME: &str = "nova-recording";

/// What goes wrong reading or writing a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text has no lines at all.
    #[error("empty recording: line 1 must be a nova-recording header")]
    Empty,
    /// A line is not a valid record.
    #[error("line {line}: {message}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The header names a version this code does not read.
    #[error(
        "line {line}: nova-recording version {found} is not supported (this is version {supported})"
    )]
    UnsupportedVersion {
        /// The line of the header.
        line: usize,
        /// The version in the file.
        found: u32,
        /// [`FORMAT_VERSION`].
        supported: u32,
    },
}

impl RecordingError {
    fn line(line: usize, message: impl Into<String>) -> Self {
        RecordingError::Line {
            line,
            message: message.into(),
        }
    }
}

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From the client to the server (`c2s`).
    #[serde(rename = "c2s")]
    ClientToServer,
    /// From the server to the client (`s2c`).
    #[serde(rename = "s2c")]
    ServerToClient,
}

/// The code and reason of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code.
    pub code: u16,
    /// The reason text.
    pub reason: String,
}

/// One recorded WebSocket frame, or the end of the TCP connection without a close handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedFrame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// A close frame, with its code and reason if it had a code.
    Close(Option<CloseInfo>),
    /// The TCP connection ended (or failed) without a close handshake.
    Drop,
}

impl RecordedFrame {
    /// A close frame with this code and reason.
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        RecordedFrame::Close(Some(CloseInfo {
            code,
            reason: reason.into(),
        }))
    }

    /// The `kind` field of this frame.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordedFrame::Text(_) => "text",
            RecordedFrame::Binary(_) => "binary",
            RecordedFrame::Ping(_) => "ping",
            RecordedFrame::Pong(_) => "pong",
            RecordedFrame::Close(_) => "close",
            RecordedFrame::Drop => "drop",
        }
    }

    /// Whether this is a ping or a pong.
    pub fn is_ping_or_pong(&self) -> bool {
        matches!(self, RecordedFrame::Ping(_) | RecordedFrame::Pong(_))
    }

    /// A short readable form for reports: the text, `binary(N bytes)`, `close(1000 "bye")`...
    pub fn describe(&self) -> String {
        match self {
            RecordedFrame::Text(t) => t.clone(),
            RecordedFrame::Binary(b) => format!("binary({} bytes)", b.len()),
            RecordedFrame::Ping(b) => format!("ping({} bytes)", b.len()),
            RecordedFrame::Pong(b) => format!("pong({} bytes)", b.len()),
            RecordedFrame::Close(None) => "close".to_owned(),
            RecordedFrame::Close(Some(c)) => format!("close({} {:?})", c.code, c.reason),
            RecordedFrame::Drop => "drop (no close handshake)".to_owned(),
        }
    }
}

/// The first line of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The format version ([`FORMAT_VERSION`] for anything this code reads).
    pub version: u32,
    /// The upstream URL, query string and user information redacted.
    pub url: String,
    /// When the recording started, UTC, RFC 3339.
    pub recorded_at: String,
    /// Free text: what the recording shows, how to re-record it.
    pub note: Option<String>,
    /// More upstream URLs the relay served (redacted), in the order of
    /// [`RelayOptions::also`](super::RelayOptions::also); empty for one upstream.
    pub also: Vec<String>,
}

/// The start of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The connection number, from 0 in accept order.
    pub conn: u32,
    /// When it opened, since the recording started.
    pub at: Duration,
    /// The request path, query redacted.
    pub target: String,
    /// The subprotocol agreed on, if any.
    pub subprotocol: Option<String>,
    /// The HTTP status the upstream refused the handshake with, if it did.
    pub refused: Option<u16>,
}

/// One frame of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRecord {
    /// The connection it belongs to ([`Open::conn`]).
    pub conn: u32,
    /// When it was seen, since the connection opened.
    pub at: Duration,
    /// Which way it went.
    pub dir: Direction,
    /// The frame.
    pub frame: RecordedFrame,
}

/// One line after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A connection starts.
    Open(Open),
    /// A frame of a connection.
    Frame(FrameRecord),
}

/// A whole recording: the header and every record, in file order. Record `i` is on line
/// `i + 2` (see [`Recording::line_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// Line 1.
    pub header: Header,
    /// Lines 2 and on.
    pub records: Vec<Record>,
}

/// The frames of one connection, with the line each came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionScript {
    /// The `open` record.
    pub open: Open,
    /// The line of the `open` record.
    pub line: usize,
    /// `(line, frame)` in order.
    pub frames: Vec<(usize, FrameRecord)>,
}

/// The JSON shape of every line (optional fields per `type` and `kind`).
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    also: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subprotocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dir: Option<Direction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `d` cut to whole microseconds, the precision of the format.
pub(crate) fn whole_micros(d: Duration) -> Duration {
    Duration::from_micros(micros(d))
}

fn need<T>(value: Option<T>, line: usize, what: &str, field: &str) -> Result<T, RecordingError> {
    value.ok_or_else(|| RecordingError::line(line, format!("{what} record without `{field}`")))
}

impl Header {
    fn to_wire(&self) -> Wire {
        Wire {
            ty: "header".into(),
            format: Some(FORMAT_NAME.into()),
            version: Some(self.version),
            url: Some(self.url.clone()),
            recorded_at: Some(self.recorded_at.clone()),
            note: self.note.clone(),
            also: self.also.clone(),
            ..Wire::default()
        }
    }

    fn from_wire(w: Wire, line: usize) -> Result<Self, RecordingError> {
        if w.ty != "header" || w.format.as_deref() != Some(FORMAT_NAME) {
            return Err(RecordingError::line(
                line,
                format!(
                    "expected the header {{\"type\":\"header\",\"format\":\"{FORMAT_NAME}\",..}}, got a `{}` record",
                    w.ty
                ),
            ));
        }
        let version = need(w.version, line, "header", "version")?;
        if version != FORMAT_VERSION {
            return Err(RecordingError::UnsupportedVersion {
                line,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Header {
            version,
            url: need(w.url, line, "header", "url")?,
            recorded_at: w.recorded_at.unwrap_or_default(),
            note: w.note,
            also: w.also,
        })
    }
}

impl Record {
    /// The connection this record belongs to.
    pub fn conn(&self) -> u32 {
        match self {
            Record::Open(o) => o.conn,
            Record::Frame(f) => f.conn,
        }
    }

    fn to_wire(&self) -> Wire {
        match self {
            Record::Open(o) => Wire {
                ty: "open".into(),
                conn: Some(o.conn),
                t_us: Some(micros(o.at)),
                target: Some(o.target.clone()),
                subprotocol: o.subprotocol.clone(),
                refused: o.refused,
                ..Wire::default()
            },
            Record::Frame(f) => {
                let mut w = Wire {
                    ty: "frame".into(),
                    conn: Some(f.conn),
                    t_us: Some(micros(f.at)),
                    dir: Some(f.dir),
                    kind: Some(f.frame.kind().into()),
                    ..Wire::default()
                };
                match &f.frame {
                    RecordedFrame::Text(t) => w.text = Some(t.clone()),
                    RecordedFrame::Binary(b) | RecordedFrame::Ping(b) | RecordedFrame::Pong(b) => {
                        if !b.is_empty() {
                            w.base64 = Some(STANDARD.encode(b));
                        }
                    }
                    RecordedFrame::Close(Some(c)) => {
                        w.code = Some(c.code);
                        w.reason = Some(c.reason.clone());
                    }
                    RecordedFrame::Close(None) | RecordedFrame::Drop => {}
                }
                w
            }
        }
    }

    fn from_wire(w: Wire, line: usize) -> Result<Self, RecordingError> {
        match w.ty.as_str() {
            "open" => Ok(Record::Open(Open {
                conn: need(w.conn, line, "open", "conn")?,
                at: Duration::from_micros(need(w.t_us, line, "open", "t_us")?),
                target: w.target.unwrap_or_else(|| "/".to_owned()),
                subprotocol: w.subprotocol,
                refused: w.refused,
            })),
            "frame" => {
                let kind = need(w.kind, line, "frame", "kind")?;
                let bytes = |b64: Option<String>| -> Result<Vec<u8>, RecordingError> {
                    match b64 {
                        None => Ok(Vec::new()),
                        Some(s) => STANDARD
                            .decode(s.as_bytes())
                            .map_err(|e| RecordingError::line(line, format!("bad base64: {e}"))),
                    }
                };
                let frame = match kind.as_str() {
                    "text" => RecordedFrame::Text(need(w.text, line, "text frame", "text")?),
                    "binary" => RecordedFrame::Binary(bytes(w.base64)?),
                    "ping" => RecordedFrame::Ping(bytes(w.base64)?),
                    "pong" => RecordedFrame::Pong(bytes(w.base64)?),
                    "close" => RecordedFrame::Close(w.code.map(|code| CloseInfo {
                        code,
                        reason: w.reason.unwrap_or_default(),
                    })),
                    "drop" => RecordedFrame::Drop,
                    other => {
                        return Err(RecordingError::line(
                            line,
                            format!(
                                "unknown frame kind `{other}`, expected one of text, binary, ping, pong, close, drop"
                            ),
                        ));
                    }
                };
                Ok(Record::Frame(FrameRecord {
                    conn: need(w.conn, line, "frame", "conn")?,
                    at: Duration::from_micros(need(w.t_us, line, "frame", "t_us")?),
                    dir: need(w.dir, line, "frame", "dir")?,
                    frame,
                }))
            }
            "header" => Err(RecordingError::line(
                line,
                "a second header: only line 1 is a header",
            )),
            other => Err(RecordingError::line(
                line,
                format!("unknown record type `{other}`, expected `open` or `frame`"),
            )),
        }
    }
}

fn parse_line(text: &str, line: usize) -> Result<Wire, RecordingError> {
    serde_json::from_str(text).map_err(|e| RecordingError::line(line, e.to_string()))
}

impl Recording {
    /// An empty recording of `url` (redacted: see [`redact_url`]), dated now.
    pub fn new(url: &str) -> Self {
        Recording {
            header: Header {
                version: FORMAT_VERSION,
                url: redact_url(url),
                recorded_at: rfc3339(SystemTime::now()),
                note: None,
                also: Vec::new(),
            },
            records: Vec::new(),
        }
    }

    /// Adds an `open` record for a new connection (numbered after the last one, opened at 0),
    /// for recordings written by hand; returns its number.
    pub fn open(&mut self, target: &str, subprotocol: Option<&str>) -> u32 {
        let conn = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Open(o) => Some(o.conn + 1),
                Record::Frame(_) => None,
            })
            .max()
            .unwrap_or(0);
        self.records.push(Record::Open(Open {
            conn,
            at: Duration::ZERO,
            target: target.to_owned(),
            subprotocol: subprotocol.map(str::to_owned),
            refused: None,
        }));
        conn
    }

    /// Adds a frame record.
    pub fn frame(&mut self, conn: u32, at: Duration, dir: Direction, frame: RecordedFrame) {
        self.records.push(Record::Frame(FrameRecord {
            conn,
            at,
            dir,
            frame,
        }));
    }

    /// The line record `index` is on (the header is line 1).
    pub fn line_of(index: usize) -> usize {
        index + 2
    }

    /// Parses a recording from its text. Blank lines are allowed only at the end, so that
    /// every record's line number is [`line_of`](Self::line_of) its index.
    pub fn parse(text: &str) -> Result<Self, RecordingError> {
        let all: Vec<&str> = text.lines().collect();
        let used = all
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map_or(0, |i| i + 1);
        let mut lines = all[..used]
            .iter()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()));
        let (first, header) = lines.next().ok_or(RecordingError::Empty)?;
        let header = Header::from_wire(parse_line(header, first)?, first)?;
        let mut records = Vec::new();
        let mut opened = std::collections::BTreeSet::new();
        for (line, text) in lines {
            if text.is_empty() {
                return Err(RecordingError::line(
                    line,
                    "blank line (one record per line, blank lines only at the end)",
                ));
            }
            let record = Record::from_wire(parse_line(text, line)?, line)?;
            match &record {
                Record::Open(o) => {
                    if !opened.insert(o.conn) {
                        return Err(RecordingError::line(
                            line,
                            format!("connection {} is opened twice", o.conn),
                        ));
                    }
                }
                Record::Frame(f) => {
                    if !opened.contains(&f.conn) {
                        return Err(RecordingError::line(
                            line,
                            format!("frame of connection {} before its `open` record", f.conn),
                        ));
                    }
                }
            }
            records.push(record);
        }
        Ok(Recording { header, records })
    }

    /// Reads and parses a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RecordingError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RecordingError::Io {
            path: path.to_owned(),
            source,
        })?;
        Recording::parse(&text)
    }

    /// The header as one JSON line (without the newline).
    pub fn header_line(&self) -> String {
        to_line(&self.header.to_wire())
    }

    /// A record as one JSON line (without the newline).
    pub fn record_line(record: &Record) -> String {
        to_line(&record.to_wire())
    }

    /// The whole recording as JSON Lines.
    pub fn to_jsonl(&self) -> String {
        let mut out = self.header_line();
        out.push('\n');
        for record in &self.records {
            out.push_str(&Self::record_line(record));
            out.push('\n');
        }
        out
    }

    /// Writes the recording to `w` as JSON Lines.
    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(self.to_jsonl().as_bytes())?;
        w.flush()
    }

    /// Writes the recording to a file (created or replaced), creating its directory.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RecordingError> {
        let path = path.as_ref();
        let io = |source| RecordingError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.to_jsonl()).map_err(io)
    }

    /// The connections, in the order their `open` records appear, each with its frames and
    /// the line of every frame.
    pub fn connections(&self) -> Vec<ConnectionScript> {
        let mut scripts: Vec<ConnectionScript> = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            let line = Self::line_of(index);
            match record {
                Record::Open(open) => scripts.push(ConnectionScript {
                    open: open.clone(),
                    line,
                    frames: Vec::new(),
                }),
                Record::Frame(frame) => {
                    if let Some(script) = scripts.iter_mut().find(|s| s.open.conn == frame.conn) {
                        script.frames.push((line, frame.clone()));
                    }
                }
            }
        }
        scripts
    }
}

fn to_line(w: &Wire) -> String {
    // Serializing a struct of strings and integers cannot fail.
    serde_json::to_string(w).unwrap_or_default()
}
