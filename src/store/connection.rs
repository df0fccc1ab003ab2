//! The connection to Redis: one node (a reconnecting multiplexed connection) or a Redis Cluster
//! (redis-rs cluster-async: commands routed by slot, topology refreshed on `MOVED`). Everything
//! else in the store is written once against [`Conn`]; the one thing that differs is how many
//! commands for many keys travel: one pipeline on a node, one pipeline per slot on a cluster
//! (a cluster pipeline must stay inside one slot), sent concurrently ([`Connection::query_each`]).

use std::collections::{BTreeMap, HashMap};

use futures::future::try_join_all;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{ClientTlsConfig, Cmd, RedisFuture, TlsCertificates, Value};

use super::StoreError;
use crate::config::RedisConfig;

/// Commands of one group may share a pipeline (and a script's keys must share one): a cluster
/// slot, or `None` for everything on a single node.
pub(super) type Group = Option<Slot>;

/// The connection handle every store method clones (both kinds are cheap clones of a
/// multiplexed connection).
#[derive(Clone)]
pub(super) enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection with what is needed to open a blocking one (the rebalance callback's read).
#[derive(Clone)]
pub(super) enum Connection {
    Node {
        client: Box<redis::Client>,
        conn: ConnectionManager,
    },
    Cluster {
        client: Box<redis::cluster::ClusterClient>,
        conn: ClusterConnection,
    },
}

impl Connection {
    /// Connects as `[redis]` says: one node or a cluster (`redis.cluster`, `url` a comma-separated
    /// list of seed nodes), plain or TLS (`rediss://`, with a private CA and a client certificate
    /// when configured).
    pub async fn open(config: &RedisConfig) -> Result<Self, StoreError> {
        if config.cluster {
            let seeds = config
                .url
                .split(',')
                .map(|url| redis::IntoConnectionInfo::into_connection_info(url.trim()))
                .collect::<Result<Vec<_>, _>>()?;
            return Self::cluster(seeds).await;
        }
        let read = |path: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, StoreError> {
            path.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| StoreError::Tls(format!("{}: {e}", p.display())))
                })
                .transpose()
        };
        let (ca, cert, key) = (
            read(&config.tls_ca_file)?,
            read(&config.tls_cert_file)?,
            read(&config.tls_key_file)?,
        );
        let client = if ca.is_none() && cert.is_none() {
            redis::Client::open(config.url.as_str())?
        } else {
            let client_tls = cert
                .zip(key)
                .map(|(client_cert, client_key)| ClientTlsConfig {
                    client_cert,
                    client_key,
                });
            redis::Client::build_with_tls(
                config.url.as_str(),
                TlsCertificates {
                    client_tls,
                    root_cert: ca,
                },
            )?
        };
        Self::node(client).await
    }

    pub async fn node(client: redis::Client) -> Result<Self, StoreError> {
        let conn = ConnectionManager::new(client.clone()).await?;
        Ok(Connection::Node {
            client: Box::new(client),
            conn,
        })
    }

    /// A cluster from its seed nodes (any reachable one is enough; the rest are discovered).
    async fn cluster(seeds: Vec<redis::ConnectionInfo>) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClient::builder(seeds)
            .retries(6)
            .build()?;
        let conn = client.get_async_connection().await?;
        Ok(Connection::Cluster {
            client: Box::new(client),
            conn,
        })
    }

    pub fn conn(&self) -> Conn {
        match self {
            Connection::Node { conn, .. } => Conn::Node(conn.clone()),
            Connection::Cluster { conn, .. } => Conn::Cluster(conn.clone()),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster { .. })
    }

    /// The group a key's commands travel in: its cluster slot; everything is one group on a node.
    pub fn slot(&self, key: &str) -> Group {
        match self {
            Connection::Node { .. } => None,
            Connection::Cluster { .. } => Some(Slot::for_key(key)),
        }
    }

    /// Runs `(group, command)` pairs, non-atomically: one pipeline per group, the groups
    /// concurrently. The replies come back in the order of the commands.
    pub async fn query_each(&self, cmds: Vec<(Group, Cmd)>) -> Result<Vec<Value>, StoreError> {
        let count = cmds.len();
        let mut groups: HashMap<Group, (Vec<usize>, redis::Pipeline)> = HashMap::new();
        for (i, (slot, cmd)) in cmds.into_iter().enumerate() {
            let (indices, pipe) = groups.entry(slot).or_default();
            indices.push(i);
            pipe.add_command(cmd);
        }
        let replies = try_join_all(groups.into_values().map(|(indices, pipe)| {
            let mut conn = self.conn();
            async move {
                let values: Vec<Value> = pipe.query_async(&mut conn).await?;
                Ok::<_, StoreError>(indices.into_iter().zip(values))
            }
        }))
        .await?;
        let mut out = vec![Value::Nil; count];
        for (i, value) in replies.into_iter().flatten() {
            out[i] = value;
        }
        Ok(out)
    }

    /// `HGETALL key` on a new blocking connection (for callbacks outside the async runtime).
    pub fn hgetall_blocking(&self, key: &str) -> Result<BTreeMap<i32, i64>, StoreError> {
        let timeout = std::time::Duration::from_secs(5);
        Ok(match self {
            Connection::Node { client, .. } => {
                let mut conn = client.get_connection_with_timeout(timeout)?;
                redis::Commands::hgetall(&mut conn, key)?
            }
            Connection::Cluster { client, .. } => {
                let mut conn = client.get_connection()?;
                conn.set_read_timeout(Some(timeout))?;
                redis::Commands::hgetall(&mut conn, key)?
            }
        })
    }

    /// Keys matching `pattern` on every primary (`SCAN` runs per node on a cluster).
    pub async fn count_keys(&self, pattern: &str) -> Result<usize, StoreError> {
        let mut count = 0;
        for route in self.routes().await? {
            let mut cursor = 0u64;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                let value = self.query_on(route.clone(), cmd).await?;
                let (next, keys): (u64, Vec<String>) = redis::from_redis_value(value)?;
                count += keys.len();
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(count)
    }

    /// `CONFIG GET parameter` on every primary: each one's value (`None` where it has none).
    pub async fn config_get(&self, parameter: &str) -> Result<Vec<Option<String>>, StoreError> {
        let mut values = Vec::new();
        for route in self.routes().await? {
            let mut cmd = redis::cmd("CONFIG");
            cmd.arg("GET").arg(parameter);
            let pairs: Vec<String> = redis::from_redis_value(self.query_on(route, cmd).await?)?;
            values.push(pairs.get(1).cloned());
        }
        Ok(values)
    }

    /// One route per primary (a single node: no routing).
    async fn routes(&self) -> Result<Vec<Option<RoutingInfo>>, StoreError> {
        Ok(match self {
            Connection::Node { .. } => vec![None],
            Connection::Cluster { .. } => self
                .primaries()
                .await?
                .into_iter()
                .map(|(host, port)| {
                    Some(RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host,
                        port,
                    }))
                })
                .collect(),
        })
    }

    /// `cmd` on the node `route` names (on a cluster), else on the connection.
    async fn query_on(&self, route: Option<RoutingInfo>, cmd: Cmd) -> Result<Value, StoreError> {
        Ok(match (route, self.conn()) {
            (Some(route), Conn::Cluster(mut conn)) => conn.route_command(cmd, route).await?,
            (_, mut conn) => cmd.query_async(&mut conn).await?,
        })
    }

    /// (host, port) of every primary, from `CLUSTER NODES`.
    async fn primaries(&self) -> Result<Vec<(String, u16)>, StoreError> {
        let mut conn = self.conn();
        let nodes: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await?;
        Ok(nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let primary = fields.get(2)?.split(',').any(|f| f == "master")
                    && !fields.get(2)?.contains("fail");
                let addr = fields.get(1)?.split('@').next()?;
                let (host, port) = addr.rsplit_once(':')?;
                primary.then(|| Some((host.to_string(), port.parse().ok()?)))?
            })
            .collect())
    }
}
