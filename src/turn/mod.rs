//! TURN: the settings of credentials minted for TURN servers (an external
//! coturn, or the embedded one), validated in [`config`].
//!
//! This module must not decide what clients are told about ICE servers
//! beyond filling in [`crate::ice::IceConfig`]; that stays in [`crate::ice`].

pub mod config;
