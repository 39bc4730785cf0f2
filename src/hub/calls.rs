//! 1:1 call control: ring, then accept | reject | busy | cancel | timeout,
//! then hangup. A peer is in at most one call.

use super::*;

/// A call between two peers.
#[derive(Debug)]
pub(super) struct Call {
    caller: PeerId,
    callee: PeerId,
    /// `Some(deadline)` while ringing; `None` once accepted.
    ringing_until: Option<Instant>,
}

impl Call {
    /// The other side of the call from `id`'s point of view.
    pub(super) fn partner(&self, id: PeerId) -> PeerId {
        if id == self.caller { self.callee } else { self.caller }
    }

    /// Caller and callee.
    #[cfg(test)]
    pub(super) fn sides(&self) -> (PeerId, PeerId) {
        (self.caller, self.callee)
    }
}

impl Hub {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ring(
        &mut self,
        from: PeerId,
        space: SpaceId,
        to: Target,
        meta: Option<Payload>,
        call: CallId,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        let callee = self.resolve(space, &to).ok_or_else(|| HubError::UnknownPeer(to.clone()))?;
        if callee == from {
            return Err(HubError::SelfCall);
        }
        if self.call_of(from).is_some() {
            return Err(HubError::AlreadyInCall);
        }
        if self.call_of(callee).is_some() {
            return Err(HubError::Busy(to));
        }
        self.calls.insert(call, Call { caller: from, callee, ringing_until: Some(now + self.limits.ring_timeout) });
        for id in [from, callee] {
            if let Some(p) = self.peers.get_mut(&id) {
                p.call = Some(call);
            }
        }
        let event = Event::Ring { call, from: self.info(from), meta };
        self.deliver(callee, event, out);
        Ok(Reply::Ringing { call })
    }

    /// The call if `who` is on the given side and it is (or is not) ringing.
    fn call_for(
        &self,
        call: CallId,
        who: PeerId,
        as_callee: Option<bool>,
        ringing: Option<bool>,
    ) -> Result<&Call, HubError> {
        let c = self.calls.get(&call).ok_or(HubError::UnknownCall(call))?;
        let side_ok = match as_callee {
            Some(true) => c.callee == who,
            Some(false) => c.caller == who,
            None => c.callee == who || c.caller == who,
        };
        let state_ok = ringing.is_none_or(|r| r == c.ringing_until.is_some());
        if side_ok && state_ok { Ok(c) } else { Err(HubError::UnknownCall(call)) }
    }

    pub(super) fn accept(&mut self, from: PeerId, call: CallId, out: &mut Vec<Delivery>) -> Result<Reply, HubError> {
        let caller = self.call_for(call, from, Some(true), Some(true))?.caller;
        if let Some(c) = self.calls.get_mut(&call) {
            c.ringing_until = None;
        }
        let event = Event::Accepted { call, by: self.info(from) };
        self.deliver(caller, event, out);
        Ok(Reply::Done)
    }

    pub(super) fn reject(
        &mut self,
        from: PeerId,
        call: CallId,
        reason: Option<Name>,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        let caller = self.call_for(call, from, Some(true), Some(true))?.caller;
        self.end(call);
        let event = Event::Rejected { call, by: self.info(from), reason };
        self.deliver(caller, event, out);
        Ok(Reply::Done)
    }

    pub(super) fn cancel(&mut self, from: PeerId, call: CallId, out: &mut Vec<Delivery>) -> Result<Reply, HubError> {
        let callee = self.call_for(call, from, Some(false), Some(true))?.callee;
        self.end(call);
        self.deliver(callee, Event::Ended { call, reason: EndReason::Cancelled }, out);
        Ok(Reply::Done)
    }

    pub(super) fn hangup(&mut self, from: PeerId, call: CallId, out: &mut Vec<Delivery>) -> Result<Reply, HubError> {
        let partner = self.call_for(call, from, None, None)?.partner(from);
        self.end(call);
        self.deliver(partner, Event::Ended { call, reason: EndReason::Hangup }, out);
        Ok(Reply::Done)
    }

    /// Forgets a call and frees both sides.
    fn end(&mut self, call: CallId) {
        if let Some(c) = self.calls.remove(&call) {
            for id in [c.caller, c.callee] {
                if let Some(p) = self.peers.get_mut(&id)
                    && p.call == Some(call)
                {
                    p.call = None;
                }
            }
        }
    }

    pub(super) fn expire_rings(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        let due: Vec<(CallId, PeerId, PeerId)> = self
            .calls
            .iter()
            .filter(|(_, c)| c.ringing_until.is_some_and(|d| d <= now))
            .map(|(id, c)| (*id, c.caller, c.callee))
            .collect();
        for (call, caller, callee) in due {
            self.end(call);
            for id in [caller, callee] {
                self.deliver(id, Event::Ended { call, reason: EndReason::Timeout }, out);
            }
        }
    }
}
