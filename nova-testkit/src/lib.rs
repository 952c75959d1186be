//! Local servers for testing nova clients.

pub mod server;

pub use server::{Frame, Received, ServerConnection, ServerOptions, TestServer};
