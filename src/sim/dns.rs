//! A minimal DNS responder for the demo and the tests: an editable in-memory zone answered over
//! UDP and TCP on one loopback port, the way a recursive resolver would answer (CNAMEs chased
//! within the zone, NXDOMAIN and NODATA with the zone's SOA, wildcards one label deep, TTL 0 so
//! that an edit shows in the next lookup).
//!
//! It answers only what its zone holds and never asks anyone else.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, CAA, CNAME, SOA};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinEncodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// CNAMEs chased within the zone for one answer (a loop stops here, as a resolver would).
const CHASE: usize = 16;

/// Records by owner name (lower case, no final dot), and the zone apexes that hold an SOA.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    records: BTreeMap<String, Vec<RData>>,
    apexes: Vec<String>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(text: &str) -> Name {
    let mut n = Name::from_ascii(key(text)).unwrap_or_else(|_| Name::root());
    n.set_fqdn(true);
    n
}

impl Zone {
    /// A zone whose apex `apex` answers SOA queries and signs negative answers.
    pub fn with_apex(mut self, apex: &str) -> Self {
        self.apexes.push(key(apex));
        self
    }

    /// Replaces every record at `owner` by a CNAME to `target`.
    pub fn cname(&mut self, owner: &str, target: &str) -> &mut Self {
        self.set(owner, vec![RData::CNAME(CNAME(name(target)))])
    }

    /// Adds an A or AAAA record at `owner`.
    pub fn address(&mut self, owner: &str, ip: IpAddr) -> &mut Self {
        let data = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        self.records.entry(key(owner)).or_default().push(data);
        self
    }

    /// Adds a CAA record `flags tag "value"` at `owner` (flags 128: critical).
    pub fn caa(&mut self, owner: &str, critical: bool, tag: &str, value: &str) -> &mut Self {
        let mut caa = CAA::new_issue(false, None, Vec::new());
        caa.issuer_critical = critical;
        caa.tag = tag.to_string();
        caa.value = value.as_bytes().to_vec();
        self.records
            .entry(key(owner))
            .or_default()
            .push(RData::CAA(caa));
        self
    }

    /// Replaces every record at `owner`.
    pub fn set(&mut self, owner: &str, records: Vec<RData>) -> &mut Self {
        self.records.insert(key(owner), records);
        self
    }

    /// Removes every record at `owner`.
    pub fn remove(&mut self, owner: &str) -> &mut Self {
        self.records.remove(&key(owner));
        self
    }

    /// Removes the records of one type at `owner`.
    pub fn remove_type(&mut self, owner: &str, rtype: RecordType) -> &mut Self {
        if let Some(records) = self.records.get_mut(&key(owner)) {
            records.retain(|r| r.record_type() != rtype);
        }
        self
    }

    /// The apex of the zone `owner` lies in, if any.
    fn apex_of(&self, owner: &str) -> Option<&String> {
        self.apexes
            .iter()
            .filter(|a| owner == a.as_str() || owner.ends_with(&format!(".{a}")))
            .max_by_key(|a| a.len())
    }

    /// Whether `owner` or a name below it holds a record (else it does not exist: NXDOMAIN).
    fn exists(&self, owner: &str) -> bool {
        let below = format!(".{owner}");
        self.apexes.iter().any(|a| a == owner)
            || self
                .records
                .keys()
                .any(|k| k == owner || k.ends_with(&below))
    }

    /// The records at `owner`: its own, else those of the wildcard one label up.
    fn at(&self, owner: &str) -> Option<&Vec<RData>> {
        if let Some(own) = self.records.get(owner) {
            return Some(own);
        }
        if self.exists(owner) {
            return None;
        }
        let (_, parent) = owner.split_once('.')?;
        self.records.get(&format!("*.{parent}"))
    }

    fn soa(&self, apex: &str) -> Record {
        let soa = SOA::new(
            name(&format!("ns.{apex}")),
            name(&format!("hostmaster.{apex}")),
            1,
            60,
            60,
            60,
            0,
        );
        Record::from_rdata(name(apex), 0, RData::SOA(soa))
    }

    /// The answer to one question: response code, answers, authorities.
    fn answer(&self, qname: &Name, qtype: RecordType) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let mut answers = Vec::new();
        let mut owner = key(&qname.to_ascii());
        let mut owner_name = qname.clone();
        for _ in 0..CHASE {
            if qtype == RecordType::SOA && self.apexes.contains(&owner) {
                answers.push(self.soa(&owner));
                return (ResponseCode::NoError, answers, Vec::new());
            }
            let records = self.at(&owner).cloned().unwrap_or_default();
            let matching: Vec<_> = records
                .iter()
                .filter(|r| r.record_type() == qtype)
                .collect();
            if !matching.is_empty() {
                answers.extend(
                    matching
                        .into_iter()
                        .map(|r| Record::from_rdata(owner_name.clone(), 0, r.clone())),
                );
                return (ResponseCode::NoError, answers, Vec::new());
            }
            let cname = records.iter().find_map(|r| match r {
                RData::CNAME(c) => Some(c.0.clone()),
                _ => None,
            });
            match cname {
                Some(target) => {
                    answers.push(Record::from_rdata(
                        owner_name.clone(),
                        0,
                        RData::CNAME(CNAME(target.clone())),
                    ));
                    owner = key(&target.to_ascii());
                    owner_name = target;
                    if self.apex_of(&owner).is_none() && !self.exists(&owner) {
                        return (ResponseCode::NoError, answers, Vec::new());
                    }
                }
                None => {
                    let authority: Vec<Record> = self
                        .apex_of(&owner)
                        .map(|a| self.soa(a))
                        .into_iter()
                        .collect();
                    let code = if answers.is_empty() && records.is_empty() && !self.exists(&owner) {
                        ResponseCode::NXDomain
                    } else {
                        ResponseCode::NoError
                    };
                    return (code, answers, authority);
                }
            }
        }
        (ResponseCode::NoError, answers, Vec::new())
    }

    /// The response to one request message, or `None` for something that is not a query.
    fn respond(&self, request: &[u8]) -> Option<Vec<u8>> {
        let request = Message::from_bytes(request).ok()?;
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.metadata.authoritative = true;
        match request.queries.first() {
            Some(q) => {
                let (code, answers, authorities) = self.answer(&q.name, q.query_type);
                response.metadata.response_code = code;
                response.add_query(q.clone());
                response.add_answers(answers);
                response.add_authorities(authorities);
            }
            None => response.metadata.response_code = ResponseCode::FormErr,
        }
        response.to_bytes().ok()
    }
}

/// A running responder: UDP and TCP on one loopback port. Stops when dropped.
pub struct Responder {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Responder {
    /// Binds `listen` (port 0: any free port) for UDP, then TCP on the same port.
    pub async fn start(listen: SocketAddr, zone: Zone) -> std::io::Result<Self> {
        let (udp, tcp) = bind_pair(listen).await?;
        let addr = udp.local_addr()?;
        let zone = Arc::new(Mutex::new(zone));
        let queries = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let served = Served {
            zone: zone.clone(),
            queries: queries.clone(),
        };
        tokio::spawn(serve_udp(udp, served.clone(), stop.clone()));
        tokio::spawn(serve_tcp(tcp, served, stop.clone()));
        Ok(Self {
            addr,
            zone,
            queries,
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Messages answered so far (UDP and TCP).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// The zone, to edit: the next query sees the change.
    pub fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// UDP and TCP on the same port: with port 0, a few tries until a port is free for both.
async fn bind_pair(listen: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..16 {
        let udp = UdpSocket::bind(listen).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// What the serving tasks share: the zone and the count of messages answered.
#[derive(Clone)]
struct Served {
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicU64>,
}

impl Served {
    fn respond(&self, request: &[u8]) -> Option<Vec<u8>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let zone = self.zone.lock().unwrap_or_else(|p| p.into_inner());
        zone.respond(request)
    }
}

async fn serve_udp(socket: UdpSocket, served: Served, stop: CancellationToken) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
        };
        let response = served.respond(&buf[..n]);
        if let Some(bytes) = response {
            let _ = socket.send_to(&bytes, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, served: Served, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let served = served.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = serve_stream(stream, &served) => {}
            }
        });
    }
}

/// Length-prefixed messages (RFC 1035 §4.2.2) until the peer closes.
async fn serve_stream(mut stream: TcpStream, served: &Served) -> std::io::Result<()> {
    loop {
        let len = stream.read_u16().await?;
        let mut request = vec![0u8; usize::from(len)];
        stream.read_exact(&mut request).await?;
        let response = served.respond(&request);
        if let Some(bytes) = response {
            let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
            stream.write_u16(len).await?;
            stream.write_all(&bytes).await?;
        }
    }
}
