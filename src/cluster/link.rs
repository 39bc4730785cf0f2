//! The Redis side of a node: joining a cluster, the publisher, the
//! subscriber, and the heartbeat that keeps the node's lease.
//!
//! Keys and channels, all under the cluster's name `C` (docs/cluster.md):
//! - `C:node-seq`: counter handing out node numbers.
//! - `C:node:N`: node N's lease (expires after the node timeout unless
//!   renewed by its heartbeat).
//! - `C:peers:N`: set of node N's peer ids, expiring with its lease.
//! - `C:name:S:NAME`: who holds an exclusive name of space S ("N:PEER"),
//!   valid while node N's lease is.
//! - channel `C:to:N`: what other nodes send node N, in order.
//! - channel `C:all`: heartbeats and hellos, read by every node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::wire::{self, Item, NodeId};
use super::{Dest, Outgoing};
use crate::clock;
use crate::config::ClusterConfig;
use crate::hub::{Name, PeerId, SpaceId};
use crate::local_hub::{LocalHub, NameRegistry};
use crate::outbox;

/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs a Redis request with a deadline: a Redis that does not answer is an
/// error in bounded time, never a hang.
async fn bounded<T>(request: impl std::future::Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not answer in time",
        ))),
    }
}

/// Most items published in one round trip.
const BATCH: usize = 512;

/// A node's place in its cluster.
#[derive(Clone)]
pub struct Link {
    /// This node's number.
    pub node: NodeId,
    /// The cluster's name.
    pub cluster: Arc<str>,
    cmd: ConnectionManager,
    hub: LocalHub,
    stop: CancellationToken,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("node", &self.node).field("cluster", &self.cluster).finish()
    }
}

/// Key and channel names of one cluster.
#[derive(Clone, Debug)]
struct Keys(Arc<str>);

impl Keys {
    fn seq(&self) -> String {
        format!("{}:node-seq", self.0)
    }
    fn lease(&self, node: NodeId) -> String {
        format!("{}:node:{node}", self.0)
    }
    fn lease_prefix(&self) -> String {
        format!("{}:node:", self.0)
    }
    fn peers(&self, node: NodeId) -> String {
        format!("{}:peers:{node}", self.0)
    }
    fn name(&self, space: SpaceId, name: &str) -> String {
        format!("{}:name:{}:{name}", self.0, space.0)
    }
    fn to(&self, dest: Dest) -> String {
        match dest {
            Dest::Node(n) => format!("{}:to:{n}", self.0),
            Dest::All => format!("{}:all", self.0),
        }
    }
}

/// Takes a name for `ARGV[1]` ("node:peer") unless a peer of another live
/// node holds it (`ARGV[2]`: prefix of lease keys; `ARGV[3]`: this node,
/// whose own hub already decided between its peers). Returns the holder,
/// or nothing.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  local node = string.match(cur, '^(%d+):')
  if node and node ~= ARGV[3] and redis.call('EXISTS', ARGV[2] .. node) == 1 then return cur end
end
redis.call('SET', KEYS[1], ARGV[1])
return false
";

/// Raises the node counter to `ARGV[1]` if it is lower.
const KEEP_ABOVE: &str = r"
local n = tonumber(ARGV[1])
if (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) < n then redis.call('SET', KEYS[1], n) end
return 1
";

/// Gives a name back if `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

async fn connect(
    config: &ClusterConfig,
    push: Option<mpsc::UnboundedSender<PushInfo>>,
) -> anyhow::Result<ConnectionManager> {
    if config.redis.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider for Redis's TLS; ours is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let info = redis::IntoConnectionInfo::into_connection_info(config.redis.as_str())
        .with_context(|| format!("--redis {}: not a Redis URL", config.redis))?;
    let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let mut manager = ConnectionManagerConfig::new()
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_max_delay(Duration::from_secs(1))
        // Few retries per failure: the heartbeat asks again every beat, and
        // a command must fail in bounded time rather than wait for Redis.
        .set_number_of_retries(2);
    if let Some(push) = push {
        manager = manager.set_push_sender(push).set_automatic_resubscription();
    }
    let first = tokio::time::timeout(COMMAND_TIMEOUT * 3, client.get_connection_manager_with_config(manager));
    first
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot reach Redis at {}: start it, or run without --redis", config.redis))
}

/// Joins the cluster: takes a node number, starts publishing what the hub
/// sends and applying what other nodes send, and keeps the node's lease.
pub async fn join(config: &ClusterConfig, hub: LocalHub, stop: CancellationToken) -> anyhow::Result<Link> {
    let keys = Keys(Arc::from(config.name.as_str()));
    let (push_tx, push_rx) = mpsc::unbounded_channel();
    let mut sub = connect(config, Some(push_tx)).await?;
    let mut cmd = connect(config, None).await?;
    let node = take_number(&mut cmd, &keys, config.node_timeout).await.context("taking a node number from Redis")?;
    let uplink = hub.join_cluster(node, config.node_timeout);
    sub.subscribe(&[keys.to(Dest::Node(node)), keys.to(Dest::All)])
        .await
        .context("subscribing to the node's channel")?;
    let claimed = Claimed::default();
    hub.set_registry(Arc::new(Registry { node, keys: keys.clone(), cmd: cmd.clone(), claimed: claimed.clone() }));
    let link = Link { node, cluster: keys.0.clone(), cmd: cmd.clone(), hub: hub.clone(), stop: stop.clone() };
    let beat = config.node_timeout / 5;
    let lease = config.node_timeout;
    tokio::spawn(subscriber(push_rx, hub.clone(), stop.clone()));
    tokio::spawn(publisher(uplink, cmd.clone(), keys.clone(), hub.clone(), node, config.node_timeout));
    tokio::spawn(heartbeat(link.clone(), sub, keys.clone(), beat, lease, claimed));
    // Everyone tells the newcomer about their peers.
    let hello = wire::encode(node, &[Item::Hello]);
    let _: i64 = cmd.publish(keys.to(Dest::All), hello).await.context("greeting the cluster")?;
    info!(cluster = %config.name, node, redis = %config.redis, "joined the cluster");
    Ok(link)
}

/// Names this node recorded in Redis between two heartbeats.
type Claimed = Arc<std::sync::Mutex<Vec<(SpaceId, Name, PeerId)>>>;

/// The cluster-wide record of exclusive names, in Redis.
#[derive(Clone)]
struct Registry {
    node: NodeId,
    keys: Keys,
    cmd: ConnectionManager,
    /// Claims made here, for the heartbeat to give back once the hub no
    /// longer holds them (even a name released before the next beat).
    claimed: Claimed,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("node", &self.node).finish()
    }
}

impl Registry {
    fn script(&self, space: SpaceId, name: &str, peer: PeerId) -> redis::ScriptInvocation<'static> {
        claim_script(&self.keys, self.node, space, name, peer)
    }
}

fn claim_script(
    keys: &Keys,
    node: NodeId,
    space: SpaceId,
    name: &str,
    peer: PeerId,
) -> redis::ScriptInvocation<'static> {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    let script = SCRIPT.get_or_init(|| redis::Script::new(CLAIM));
    let mut call = script.key(keys.name(space, name));
    call.arg(format!("{node}:{}", peer.0)).arg(keys.lease_prefix()).arg(node.to_string());
    call
}

impl NameRegistry for Registry {
    /// Asks Redis, blocking this worker thread for at most the command
    /// timeout (claims are rare; the other workers go on meanwhile).
    fn claim(&self, space: SpaceId, name: &str, peer: PeerId) -> Option<bool> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            debug!("cannot wait for Redis on a single-threaded runtime: the name is checked on this node only");
            return None;
        }
        let mut cmd = self.cmd.clone();
        let call = self.script(space, name, peer);
        let holder =
            tokio::task::block_in_place(|| handle.block_on(bounded(call.invoke_async::<Option<String>>(&mut cmd))));
        match holder {
            Ok(None) => {
                self.claimed.lock().unwrap_or_else(|e| e.into_inner()).push((space, Name::from(name), peer));
                Some(true)
            }
            Ok(Some(_)) => Some(false),
            Err(e) => {
                warn!(error = %e, "cannot claim a name in Redis: checked on this node only");
                None
            }
        }
    }
}

/// A node number no live node has: the counter's next, skipping any whose
/// lease exists (a Redis that restarted empty counts from 1 again).
async fn take_number(cmd: &mut ConnectionManager, keys: &Keys, lease: Duration) -> redis::RedisResult<NodeId> {
    loop {
        let node: NodeId = cmd.incr(keys.seq(), 1u64).await?;
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::EX(lease.as_secs().max(1)));
        let taken: Option<String> = cmd.set_options(keys.lease(node), clock_stamp(), options).await?;
        if taken.is_some() {
            return Ok(node);
        }
    }
}

impl Link {
    /// Leaves the cluster: this node's away peers and what waits for them go
    /// to another node, then the lease is dropped. Waits (boundedly) for
    /// what is queued to be published.
    pub async fn leave(&self) {
        let handed = self.hub.hand_over_all();
        info!(peers = handed, "handing this node's away peers to another node");
        let deadline = clock::now() + Duration::from_secs(3);
        while self.hub.uplink_len() > 0 && clock::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let keys = Keys(self.cluster.clone());
        let mut cmd = self.cmd.clone();
        let _: redis::RedisResult<()> = bounded(cmd.del(&[keys.lease(self.node), keys.peers(self.node)])).await;
        self.stop.cancel();
    }
}

/// Applies what other nodes send, in the order it arrives.
async fn subscriber(mut rx: mpsc::UnboundedReceiver<PushInfo>, hub: LocalHub, stop: CancellationToken) {
    loop {
        let push = tokio::select! {
            p = rx.recv() => p,
            _ = stop.cancelled() => return,
        };
        let Some(push) = push else { return };
        match push.kind {
            PushKind::Message => {
                let Some(Value::BulkString(bytes)) = push.data.get(1) else { continue };
                match wire::decode(bytes) {
                    Ok((from, items)) => hub.apply(from, items, clock::now()),
                    Err(e) => warn!(error = %e, "ignoring a cluster message"),
                }
            }
            PushKind::Disconnection => hub.redis_reachable(false, clock::now()),
            _ => {}
        }
    }
}

/// Publishes what the hub sends, in order, one pipeline per batch; tells
/// the hub of channels nobody reads (dead nodes) and of Redis failing.
async fn publisher(
    mut uplink: outbox::Receiver<Outgoing, ()>,
    mut cmd: ConnectionManager,
    keys: Keys,
    hub: LocalHub,
    node: NodeId,
    patience: Duration,
) {
    loop {
        let first = match uplink.next().await {
            outbox::Next::Event(o) => o,
            outbox::Next::Closed | outbox::Next::Alarm(()) => return,
            outbox::Next::Probe => continue,
        };
        let mut batch = Vec::with_capacity(32);
        batch.push(first);
        while batch.len() < BATCH {
            match uplink.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        // One message per destination, each keeping the order of its items.
        // Items for the cluster's channel are read by every node: nothing
        // for a node is moved across one, so each node still reads in order.
        let (dests, groups) = group_by_destination(batch);
        let mut pipe = redis::pipe();
        for (dest, group) in dests.iter().zip(&groups) {
            pipe.publish(keys.to(*dest), wire::encode_each(node, group.iter().map(|o| &o.item)));
        }
        match bounded(pipe.query_async::<Vec<i64>>(&mut cmd)).await {
            Ok(counts) => {
                for ((dest, group), count) in dests.into_iter().zip(groups).zip(counts) {
                    // Just after Redis came back, nodes resubscribe one by one:
                    // an empty channel then means "not yet", not "dead".
                    if let (Dest::Node(n), 0) = (dest, count)
                        && !(hub.redis_settling(patience, clock::now())
                            && redelivered(&mut cmd, &keys, node, n, &group, patience).await)
                    {
                        hub.unreachable(n, group, clock::now());
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "cannot publish to Redis: what was on its way to other nodes is refused");
                hub.redis_reachable(false, clock::now());
                hub.refuse_routed(groups.into_iter().flatten().collect(), clock::now());
            }
        }
    }
}

/// Nobody read what was published to node `n` while Redis is coming back:
/// the node is likely between subscriptions (nodes reconnect one after
/// another; an empty Redis has lost their leases too, so those prove
/// nothing yet). Publishes again for at most `patience` (the node
/// timeout); whether someone read it in the end.
async fn redelivered(
    cmd: &mut ConnectionManager,
    keys: &Keys,
    node: NodeId,
    n: NodeId,
    group: &[Outgoing],
    patience: Duration,
) -> bool {
    let give_up = clock::now() + patience;
    let message = wire::encode_each(node, group.iter().map(|o| &o.item));
    while clock::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if bounded(cmd.publish::<_, _, i64>(keys.to(Dest::Node(n)), &message)).await.unwrap_or(0) > 0 {
            return true;
        }
    }
    false
}

/// Splits a batch into messages, one per destination, in order: items for
/// one node are gathered, but never across an item for every node.
fn group_by_destination(batch: Vec<Outgoing>) -> (Vec<Dest>, Vec<Vec<Outgoing>>) {
    let mut dests: Vec<Dest> = Vec::new();
    let mut groups: Vec<Vec<Outgoing>> = Vec::new();
    // Where the groups after the last cluster-wide item start.
    let mut segment = 0;
    for o in batch {
        let found = if o.dest == Dest::All {
            // Only the group just before, if it is for every node too.
            (dests.last() == Some(&Dest::All)).then(|| dests.len() - 1)
        } else {
            dests[segment..].iter().position(|d| *d == o.dest).map(|i| i + segment)
        };
        match found {
            Some(i) => groups[i].push(o),
            None => {
                if o.dest == Dest::All {
                    segment = dests.len() + 1;
                }
                dests.push(o.dest);
                groups.push(vec![o]);
            }
        }
    }
    (dests, groups)
}

/// Keeps the lease, says "alive" on the cluster channel, keeps the peer set
/// and the name claims current, and notices Redis going and coming back.
async fn heartbeat(
    link: Link,
    mut sub: ConnectionManager,
    keys: Keys,
    every: Duration,
    lease: Duration,
    claimed: Claimed,
) {
    let mut cmd = link.cmd.clone();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let beat = wire::encode(link.node, &[]);
    // What Redis holds for this node as far as it knows. `restate`: it may
    // hold less (first beat, a failed beat, a Redis that lost the lease):
    // record everything again, and give back every name not held now.
    let mut peers: HashSet<u64> = HashSet::new();
    let mut names: HashSet<(SpaceId, Name, PeerId)> = HashSet::new();
    let mut restate = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = link.stop.cancelled() => return,
        }
        // The subscriber's connection only notices a dead Redis when used.
        let sub_ok = bounded(redis::cmd("PING").query_async::<String>(&mut sub)).await.is_ok();
        // Recorded by a claim since the last beat: given back below if no
        // longer held (a name claimed and released between two beats too).
        names.extend(std::mem::take(&mut *claimed.lock().unwrap_or_else(|e| e.into_inner())));
        let (own_peers, own_names) = link.hub.own_peers_and_names();
        let now_peers: HashSet<u64> = own_peers.into_iter().map(|p| p.0).collect();
        let now_names: HashSet<(SpaceId, Name, PeerId)> = own_names.into_iter().collect();
        let secs = lease.as_secs().max(1);
        let mut pipe = redis::pipe();
        // The lease's old value: none means Redis lost it (it restarted).
        pipe.cmd("SET").arg(keys.lease(link.node)).arg(clock_stamp()).arg("EX").arg(secs).arg("GET");
        pipe.publish(keys.to(Dest::All), beat.clone()).ignore();
        if restate {
            // Node numbers stay above every node this one knows, alive or in
            // its peers' grace, even after Redis restarted empty.
            pipe.cmd("EVAL")
                .arg(KEEP_ABOVE)
                .arg(1)
                .arg(keys.seq())
                .arg(link.hub.highest_node().max(link.node))
                .ignore();
            pipe.del(keys.peers(link.node)).ignore();
        }
        let added: Vec<u64> =
            if restate { now_peers.iter().copied().collect() } else { now_peers.difference(&peers).copied().collect() };
        let removed: Vec<u64> = if restate { Vec::new() } else { peers.difference(&now_peers).copied().collect() };
        if !added.is_empty() {
            pipe.sadd(keys.peers(link.node), &added).ignore();
        }
        if !removed.is_empty() {
            pipe.srem(keys.peers(link.node), &removed).ignore();
        }
        pipe.expire(keys.peers(link.node), secs as i64).ignore();
        let claims: Vec<&(SpaceId, Name, PeerId)> =
            if restate { now_names.iter().collect() } else { now_names.difference(&names).collect() };
        let releases: Vec<&(SpaceId, Name, PeerId)> = names.difference(&now_names).collect();
        if !claims.is_empty() || !releases.is_empty() {
            // A pipeline runs scripts by hash only: load them first (a Redis
            // that restarted has forgotten them).
            for script in [CLAIM, RELEASE] {
                pipe.cmd("SCRIPT").arg("LOAD").arg(script).ignore();
            }
        }
        for (space, name, peer) in claims {
            // Names claimed before Redis came back (or non-exclusive ones)
            // are recorded too; a live holder elsewhere keeps its record.
            // Before the releases: a record that changes hands here (a keyed
            // claim's stand-in id, then its peer's) is never absent between.
            pipe.invoke_script(&claim_script(&keys, link.node, *space, name, *peer)).ignore();
        }
        for (space, name, peer) in releases {
            pipe.invoke_script(
                redis::Script::new(RELEASE).key(keys.name(*space, name)).arg(format!("{}:{}", link.node, peer.0)),
            )
            .ignore();
        }
        match bounded(pipe.query_async::<(Option<String>,)>(&mut cmd)).await {
            Ok((old_lease,)) if sub_ok => {
                peers = now_peers;
                names = now_names;
                // Redis lost the lease: it lost the rest too; restate next beat.
                restate = old_lease.is_none() && !restate;
                if restate {
                    info!("Redis lost this node's lease (it restarted): recording peers and names again");
                }
                if !link.hub.redis_up() {
                    link.hub.redis_reachable(true, clock::now());
                }
            }
            Ok(_) => debug!("Redis answers, the subscription not yet"),
            Err(e) => {
                if link.hub.redis_up() {
                    warn!(error = %e, "Redis is unreachable");
                }
                link.hub.redis_reachable(false, clock::now());
                // Everything is restated once it is back; names possibly
                // recorded are kept, to be given back if no longer held.
                names.extend(now_names);
                restate = true;
            }
        }
    }
}

/// A lease's value: when it was last renewed (for people reading Redis).
fn clock_stamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::PeerId;

    fn out(dest: Dest, n: u64) -> Outgoing {
        Outgoing { dest, item: Item::Gone(PeerId(n)) }
    }

    #[test]
    fn a_batch_is_grouped_by_node_but_never_across_an_item_for_every_node() {
        let (a, b) = (Dest::Node(1), Dest::Node(2));
        let batch = vec![out(a, 1), out(b, 2), out(a, 3), out(Dest::All, 4), out(Dest::All, 5), out(a, 6), out(b, 7)];
        let (dests, groups) = group_by_destination(batch);
        let ids: Vec<Vec<u64>> = groups
            .iter()
            .map(|g| g.iter().map(|o| if let Item::Gone(p) = o.item { p.0 } else { 0 }).collect())
            .collect();
        assert_eq!(dests, [a, b, Dest::All, a, b]);
        assert_eq!(ids, [vec![1, 3], vec![2], vec![4, 5], vec![6], vec![7]]);
    }
}
