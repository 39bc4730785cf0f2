//! Transports: sockets and HTTP. They move frames between the network and a
//! dialect's [`Protocol`](crate::dialect::Protocol), and own all I/O.

pub mod easyrtc_io;
pub mod eio3_text;
pub mod socketio;
pub mod tls;
pub mod upgrade;
pub mod ws;
