//! Keyed claims: a connection asks for a name together with a key it chose
//! itself (PeerJS's id and token). The same key continues the peer that holds
//! the name; a different key gets the name only if its holder is gone.

use super::*;

/// How a keyed claim went.
#[derive(Debug, PartialEq)]
pub enum Keyed {
    /// Nobody held the name: a new peer holds it now.
    New(PeerId),
    /// Same key: the holder continues on the new connection; these events
    /// waited for it, in order.
    Resumed(PeerId, Vec<Event>),
    /// A different key took the name from a holder that was away or judged
    /// dead: `old` is removed, `peer` is new and inherits what waited for it.
    Replaced {
        /// The new peer.
        peer: PeerId,
        /// The removed holder.
        old: PeerId,
        /// Events that were waiting for the old holder, in order.
        waiting: Vec<Event>,
    },
}

impl Hub {
    /// Connects a peer holding `name` exclusively under `key`.
    ///
    /// If a peer with the same key holds it, that peer is resumed (taken over
    /// if still connected). If one with another key holds it, it is replaced
    /// when it is away or `dead(holder)` says its connection is dead, and
    /// otherwise the claim fails with [`HubError::NameTaken`]. A new peer is
    /// refused with [`HubError::SpaceFull`] when the space has `limit` peers,
    /// and a name its grant does not allow with [`HubError::NotAllowed`]
    /// before anything else happens.
    #[allow(clippy::too_many_arguments)]
    pub fn connect_keyed(
        &mut self,
        space: SpaceId,
        opts: PeerOpts,
        name: Name,
        key: Name,
        limit: Option<usize>,
        dead: impl FnOnce(PeerId) -> bool,
        out: &mut Vec<Delivery>,
    ) -> Result<Keyed, HubError> {
        // Checked before anyone is touched: a refused claim changes nothing.
        if name.is_empty() || name.len() > self.limits.max_name_len {
            return Err(HubError::BadName(self.limits.max_name_len));
        }
        if let Some(grant) = &opts.grant
            && !grant.allows_name(&name)
        {
            return Err(HubError::NotAllowed(Denied::Name(name)));
        }
        let mut waiting = Vec::new();
        let mut old = None;
        if let Some(holder) = self.lookup(space, &name) {
            let (same_key, away) = match self.peers.get(&holder) {
                Some(p) => (p.key.as_deref() == Some(&*key), p.away.is_some()),
                None => (false, true),
            };
            if same_key {
                let (id, waiting) = self.resume_id(holder, out)?;
                return Ok(Keyed::Resumed(id, waiting));
            }
            // A name shared with others (claimed non-exclusively) is not one
            // peer's to hand over: replacing its first holder would leave the
            // others holding it, and the exclusive claim below would fail.
            let shared = self.names.get(&(space, name.clone())).is_some_and(|h| h.len() > 1);
            if shared || (!away && !dead(holder)) {
                return Err(HubError::NameTaken(name));
            }
            if let Some(peer) = self.peers.get_mut(&holder) {
                waiting = peer.away.take().map(|a| unqueue(&mut self.away_bytes, a)).map(Vec::from).unwrap_or_default();
            }
            self.remove(holder, Vec::new(), out);
            old = Some(holder);
        } else if let Some(limit) = limit
            && self.population(space) >= limit
        {
            return Err(HubError::SpaceFull(limit));
        }
        let peer = self.connect(space, opts, None);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.key = Some(key);
        }
        if let Err(e) = self.claim(peer, space, name, true, out) {
            // No peer without its name is left behind.
            self.remove(peer, Vec::new(), out);
            return Err(e);
        }
        Ok(match old {
            Some(old) => Keyed::Replaced { peer, old, waiting },
            None => Keyed::New(peer),
        })
    }
}
