//! Rooms: membership, presence notices and broadcast.

use super::*;

impl Hub {
    pub(super) fn join(
        &mut self,
        from: PeerId,
        space: SpaceId,
        room: Name,
        info: Option<Payload>,
        max: Option<usize>,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        if let Some(grant) = self.grant_of(from)
            && !grant.allows_room(&room)
        {
            return Err(HubError::NotAllowed(Denied::Room(room)));
        }
        let key = (space, room.clone());
        let members = self.rooms.get(&key).cloned().unwrap_or_default();
        if members.contains(&from) {
            // Joining again with a profile replaces it; the others are told again.
            if let Some(info) = info {
                if let Some(peer) = self.peers.get_mut(&from) {
                    peer.info = Some(info);
                }
                let me = self.info(from);
                for m in members.iter().filter(|m| **m != from) {
                    self.deliver(*m, Event::Joined { room: room.clone(), peer: me.clone() }, out);
                }
            }
            let others = members.iter().filter(|m| **m != from).map(|m| self.info(*m)).collect();
            return Ok(Reply::Joined { members: others });
        }
        let max = max.map_or(self.limits.room_members, |m| m.min(self.limits.room_members));
        if members.len() >= max {
            return Err(HubError::RoomFull(room, max));
        }
        let joined = self.peers.get(&from).map_or(0, |p| p.rooms.iter().filter(|r| !r.starts_with(INTERNAL)).count());
        if !room.starts_with(INTERNAL) && joined >= self.limits.rooms_per_peer {
            return Err(HubError::TooManyRooms(self.limits.rooms_per_peer));
        }
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.rooms.push(room.clone());
            if info.is_some() {
                peer.info = info;
            }
        }
        let me = self.info(from);
        let others: Vec<PeerInfo> = members.iter().map(|m| self.info(*m)).collect();
        for m in &members {
            self.deliver(*m, Event::Joined { room: room.clone(), peer: me.clone() }, out);
        }
        self.rooms.entry(key).or_default().push(from);
        Ok(Reply::Joined { members: others })
    }

    pub(super) fn leave(
        &mut self,
        from: PeerId,
        space: SpaceId,
        room: &Name,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        let Some(peer) = self.peers.get_mut(&from) else { return Err(HubError::UnknownPeer(Target::Id(from))) };
        if !peer.rooms.contains(room) {
            return Err(HubError::NotInRoom(room.clone()));
        }
        peer.rooms.retain(|r| r != room);
        let info = self.info(from);
        self.leave_room(from, space, room, &info, out);
        Ok(Reply::Done)
    }

    /// Takes `id` out of the room's member list and tells the rest.
    pub(super) fn leave_room(
        &mut self,
        id: PeerId,
        space: SpaceId,
        room: &Name,
        info: &PeerInfo,
        out: &mut Vec<Delivery>,
    ) {
        let key = (space, room.clone());
        let Some(members) = self.rooms.get_mut(&key) else { return };
        members.retain(|m| *m != id);
        let rest = members.clone();
        if rest.is_empty() {
            self.rooms.remove(&key);
        }
        for m in rest {
            self.deliver(m, Event::Left { room: room.clone(), peer: info.clone() }, out);
        }
    }

    pub(super) fn broadcast(
        &mut self,
        from: PeerId,
        space: SpaceId,
        room: Name,
        kind: Name,
        payload: Payload,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        let members = self.rooms.get(&(space, room.clone())).cloned().unwrap_or_default();
        if !members.contains(&from) {
            return Err(HubError::NotInRoom(room));
        }
        let me = self.info(from);
        for m in members.into_iter().filter(|m| *m != from) {
            let event = Event::Signal {
                from: me.clone(),
                kind: kind.clone(),
                payload: payload.clone(),
                room: Some(room.clone()),
                mark: None,
            };
            self.deliver(m, event, out);
        }
        Ok(Reply::Sent)
    }
}
