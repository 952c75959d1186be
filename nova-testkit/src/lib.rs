//! Local servers for testing nova clients.

pub mod server;

pub use server::{
    Frame, Received, Responder, ServerConnection, ServerOptions, TestServer, wait_until,
};
