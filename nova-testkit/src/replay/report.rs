//! What a replay found: a typed list of issues with the recording's line numbers.
//!
//! A [`ReplayReport`] is returned by [`ReplayServer::finish`](super::ReplayServer::finish)
//! (and, as a snapshot, by [`ReplayServer::report`](super::ReplayServer::report)). It is OK
//! when every recorded connection was opened and played to its end, every expected client
//! frame arrived and matched, and nothing else arrived. Its `Display` is meant for a test's
//! failure message:
//!
//! ```text
//! replay of tests/fixtures/deribit.jsonl: 2 issues (2 of 2 connections, 5 client frames matched)
//! - connection 0, line 7: the client sent a different frame: at /params/channels/0: expected "book.BTC-PERPETUAL.100ms", got "ticker.BTC-PERPETUAL.100ms"
//!     expected: {"jsonrpc":"2.0","id":4,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}
//!     got:      {"jsonrpc":"2.0","id":4,"method":"public/subscribe","params":{"channels":["ticker.BTC-PERPETUAL.100ms"]}}
//! - connection 1 (line 12) was never opened by the client
//! ```

use std::fmt;
use std::time::Duration;

/// One thing that did not go as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Issue {
    /// The client sent a frame, but not the one recorded on `line`.
    Mismatch {
        /// The recorded connection.
        conn: u32,
        /// The line of the expected frame.
        line: usize,
        /// The recorded frame.
        expected: String,
        /// The frame the client sent.
        got: String,
        /// Where they differ.
        detail: String,
    },
    /// The client closed or dropped the connection where the recording expects a frame.
    Missing {
        /// The recorded connection.
        conn: u32,
        /// The line of the expected frame.
        line: usize,
        /// The recorded frame.
        expected: String,
        /// What happened instead.
        got: String,
    },
    /// The client sent nothing matching within the timeout.
    Timeout {
        /// The recorded connection.
        conn: u32,
        /// The line of the expected frame.
        line: usize,
        /// The recorded frame.
        expected: String,
        /// How long the server waited.
        waited: Duration,
    },
    /// The client sent a frame after its connection's recording was played to the end.
    Unexpected {
        /// The recorded connection.
        conn: u32,
        /// The last line of that connection.
        after_line: usize,
        /// The frame.
        got: String,
    },
    /// The client went away while the server still had recorded frames to send.
    ClientGone {
        /// The recorded connection.
        conn: u32,
        /// The line of the frame that could not be sent.
        line: usize,
    },
    /// The client opened more connections than the recording has.
    UnexpectedConnection {
        /// The number of the connection (from 0, in accept order).
        index: usize,
    },
    /// A recorded connection the client never opened.
    NotConnected {
        /// The recorded connection.
        conn: u32,
        /// The line of its `open` record.
        line: usize,
    },
    /// A connection still had recorded frames to play when the replay was finished.
    Incomplete {
        /// The recorded connection.
        conn: u32,
        /// The line the server was at.
        line: usize,
    },
}

/// How long an expected or received frame may be in a report before it is cut.
const SHOW: usize = 400;

fn cut(s: &str) -> String {
    if s.len() <= SHOW {
        return s.to_owned();
    }
    let mut end = SHOW;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Mismatch {
                conn,
                line,
                expected,
                got,
                detail,
            } => write!(
                f,
                "connection {conn}, line {line}: the client sent a different frame: {detail}\n    expected: {}\n    got:      {}",
                cut(expected),
                cut(got)
            ),
            Issue::Missing {
                conn,
                line,
                expected,
                got,
            } => write!(
                f,
                "connection {conn}, line {line}: expected {} but {got}",
                cut(expected)
            ),
            Issue::Timeout {
                conn,
                line,
                expected,
                waited,
            } => write!(
                f,
                "connection {conn}, line {line}: nothing matching in {waited:?}; expected {}",
                cut(expected)
            ),
            Issue::Unexpected {
                conn,
                after_line,
                got,
            } => write!(
                f,
                "connection {conn}: an extra client frame after line {after_line}: {}",
                cut(got)
            ),
            Issue::ClientGone { conn, line } => write!(
                f,
                "connection {conn}, line {line}: the client went away before this server frame"
            ),
            Issue::UnexpectedConnection { index } => write!(
                f,
                "connection {index}: the client opened more connections than were recorded"
            ),
            Issue::NotConnected { conn, line } => {
                write!(
                    f,
                    "connection {conn} (line {line}) was never opened by the client"
                )
            }
            Issue::Incomplete { conn, line } => write!(
                f,
                "connection {conn}: not played to the end (waiting at line {line})"
            ),
        }
    }
}

/// The outcome of a replay. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Where the recording came from (a path, or `"memory"`).
    pub source: String,
    /// Connections in the recording.
    pub recorded: usize,
    /// Connections the client opened (extra ones included).
    pub opened: usize,
    /// Recorded connections played to their end.
    pub completed: usize,
    /// Client frames that matched their recorded ones.
    pub matched: usize,
    /// Server frames sent.
    pub sent: usize,
    /// Everything that went wrong, in the order it was seen.
    pub issues: Vec<Issue>,
}

impl ReplayReport {
    /// Whether the replay went exactly as recorded.
    pub fn is_ok(&self) -> bool {
        self.issues.is_empty() && self.completed == self.recorded
    }

    /// Panics with the report if it is not [OK](Self::is_ok): for tests.
    ///
    /// # Panics
    /// If there are issues.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(self.is_ok(), "{self}");
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = format!(
            "{} of {} connections, {} client frames matched, {} server frames sent",
            self.completed, self.recorded, self.matched, self.sent
        );
        if self.is_ok() {
            return write!(f, "replay of {} OK ({summary})", self.source);
        }
        write!(
            f,
            "replay of {}: {} issue{} ({summary})",
            self.source,
            self.issues.len(),
            if self.issues.len() == 1 { "" } else { "s" }
        )?;
        for issue in &self.issues {
            write!(f, "\n- {issue}")?;
        }
        Ok(())
    }
}
