//! Deribit API v2 for nova: JSON-RPC 2.0 over WebSocket.
