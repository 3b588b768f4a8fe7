//! Links into the subscriber's pages, derived from ids with an HMAC under the service's secret.
//!
//! A derived link needs nothing stored (a database copy holds no working link) and is
//! bound to its purpose: a manage link does not verify as anything else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// What a signed link opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The subscriber's preferences and unsubscribe pages.
    Manage,
    /// Rating papers from a digest (mail scanners and forwarded digests reach these
    /// links; they open nothing else).
    Rate,
    /// The web copy of one delivery ("view in browser"): signs the delivery, not the subscriber.
    Copy,
    /// The subscriber's private feed, in its generation: resetting the feed bumps the
    /// generation, and the old link no longer verifies.
    Feed(i32),
    /// The VERP tag of a message's envelope sender: what a bounce comes back to.
    Bounce,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Self::Manage => b"manage",
            Self::Rate => b"rate",
            Self::Copy => b"copy",
            Self::Feed(_) => b"feed",
            Self::Bounce => b"bounce",
        }
    }
}

const MAC_BYTES: usize = 16;

/// Compares secrets without leaking where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs and checks link tokens: 16 bytes of id and 16 of MAC, 43 URL-safe characters
/// (the shape of a random `Token`, so links look alike whatever their kind).
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer whose key is derived from the service secret, so link MACs never share a
    /// key with session hashes or anything else made from the same secret.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"paperboy link key v1");
        Self { key: mac.finalize().into_bytes().into() }
    }

    fn mac(&self, purpose: Purpose, id: &Uuid) -> [u8; MAC_BYTES] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.tag());
        if let Purpose::Feed(generation) = purpose {
            mac.update(&generation.to_be_bytes());
        }
        mac.update(&[0]);
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        full[..MAC_BYTES].try_into().expect("SHA-256 is longer than the MAC")
    }

    pub fn sign(&self, purpose: Purpose, id: &Uuid) -> String {
        let mut bytes = [0u8; 16 + MAC_BYTES];
        bytes[..16].copy_from_slice(id.as_bytes());
        bytes[16..].copy_from_slice(&self.mac(purpose, id));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The id a token was signed for, if it was signed by us for this purpose.
    pub fn verify(&self, purpose: Purpose, raw: &str) -> Option<Uuid> {
        let (id, mac) = split(raw)?;
        // Constant time: no byte of the MAC leaks through timing.
        same_secret(&self.mac(purpose, &id), &mac).then_some(id)
    }

    /// The confirmation token a seed stands for. Only the seed waits in the mail queue and
    /// only a hash of the token is stored, so no copy of the database confirms anyone.
    pub fn confirmation_token(&self, seed: &crate::domain::Token) -> crate::domain::Token {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"confirm\0");
        mac.update(seed.as_str().as_bytes());
        let token = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        crate::domain::Token::parse(&token).expect("43 URL-safe characters")
    }

    /// The id a well-formed token names, before any check: for purposes whose MAC covers
    /// something stored with that id (the feed's generation). `verify` must follow.
    pub fn claimed_id(raw: &str) -> Option<Uuid> {
        split(raw).map(|(id, _)| id)
    }
}

fn split(raw: &str) -> Option<(Uuid, Vec<u8>)> {
    if raw.len() != 43 {
        return None;
    }
    let mut bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    if bytes.len() != 16 + MAC_BYTES {
        return None;
    }
    let mac = bytes.split_off(16);
    Some((Uuid::from_slice(&bytes).ok()?, mac))
}

/// What a message sent by paperboy was, as its VERP tag names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// A digest: the delivery's id.
    Delivery(i64),
    /// A transactional email (confirmation, preferences link): its `outgoing_mail` id.
    Mail(i64),
}

/// Hex characters of MAC in a VERP tag (80 bits): lower-case, since mail servers may fold
/// the case of local parts.
const TAG_MAC_HEX: usize = 20;

impl Signer {
    fn tag_id(sent: Sent) -> Uuid {
        match sent {
            Sent::Delivery(id) => Uuid::from_u64_pair(id as u64, 1),
            Sent::Mail(id) => Uuid::from_u64_pair(id as u64, 2),
        }
    }

    /// `d1f-0a1b…`: the message's kind and id (hex) and a MAC, for `bounces+<tag>@…`.
    pub fn bounce_tag(&self, sent: Sent) -> String {
        let (kind, id) = match sent {
            Sent::Delivery(id) => ('d', id),
            Sent::Mail(id) => ('m', id),
        };
        let mac = hex::encode(self.mac(Purpose::Bounce, &Self::tag_id(sent)));
        format!("{kind}{id:x}-{}", &mac[..TAG_MAC_HEX])
    }

    /// The message a VERP tag names, if we made the tag.
    pub fn verify_bounce_tag(&self, raw: &str) -> Option<Sent> {
        let raw = raw.to_ascii_lowercase();
        let (head, mac) = raw.split_once('-')?;
        let (kind, id) = head.split_at_checked(1)?;
        if id.is_empty() || id.len() > 16 || mac.len() != TAG_MAC_HEX {
            return None;
        }
        let id = i64::from_str_radix(id, 16).ok()?;
        let sent = match kind {
            "d" => Sent::Delivery(id),
            "m" => Sent::Mail(id),
            _ => return None,
        };
        let expected = hex::encode(self.mac(Purpose::Bounce, &Self::tag_id(sent)));
        same_secret(&expected.as_bytes()[..TAG_MAC_HEX], mac.as_bytes()).then_some(sent)
    }
}

/// Absolute and relative links to a subscriber's pages.
#[derive(Clone, Debug)]
pub struct Links {
    base: String,
    signer: Signer,
}

impl Links {
    pub fn new(base_url: &str, secret: &[u8]) -> Self {
        Self { base: base_url.trim_end_matches('/').to_string(), signer: Signer::new(secret) }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// An absolute link for emails.
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn manage_token(&self, subscriber: &Uuid) -> String {
        self.signer.sign(Purpose::Manage, subscriber)
    }

    pub fn preferences_path(&self, subscriber: &Uuid) -> String {
        format!("/preferences/{}", self.manage_token(subscriber))
    }

    pub fn preferences(&self, subscriber: &Uuid) -> String {
        self.absolute(&self.preferences_path(subscriber))
    }

    pub fn unsubscribe(&self, subscriber: &Uuid) -> String {
        self.absolute(&format!("/unsubscribe/{}", self.manage_token(subscriber)))
    }

    pub fn rate_token(&self, subscriber: &Uuid) -> String {
        self.signer.sign(Purpose::Rate, subscriber)
    }

    /// `/rate/{token}/`: every rating link of a subscriber continues with
    /// `{arxiv_id}/{up|down|clear}`.
    pub fn rate_prefix(&self, subscriber: &Uuid) -> String {
        format!("/rate/{}/", self.rate_token(subscriber))
    }

    /// `/rate/{token}/{arxiv_id}/{up|down|clear}`
    pub fn rate_path(&self, subscriber: &Uuid, arxiv_id: &str, rating: &str) -> String {
        format!("{}{arxiv_id}/{rating}", self.rate_prefix(subscriber))
    }

    /// `rate_prefix` as an absolute link, for emails.
    pub fn rate_base(&self, subscriber: &Uuid) -> String {
        self.absolute(&self.rate_prefix(subscriber))
    }

    /// The public page of papers, up to the id: `{base}/papers/`.
    pub fn papers_base(&self) -> String {
        self.absolute("/papers/")
    }

    /// `/d/{token}`: the web copy of one delivery.
    pub fn copy_path(&self, delivery: i64) -> String {
        let id = Uuid::from_u64_pair(delivery as u64, 0);
        format!("/d/{}", self.signer.sign(Purpose::Copy, &id))
    }

    pub fn copy(&self, delivery: i64) -> String {
        self.absolute(&self.copy_path(delivery))
    }

    /// The delivery a web-copy token was signed for.
    pub fn copy_delivery(&self, raw: &str) -> Option<i64> {
        let (id, rest) = self.signer.verify(Purpose::Copy, raw)?.as_u64_pair();
        (rest == 0).then_some(id as i64)
    }

    /// `/feed/{token}`: the subscriber's private feed in its current generation.
    pub fn feed(&self, subscriber: &Uuid, generation: i32) -> String {
        self.absolute(&format!("/feed/{}", self.signer.sign(Purpose::Feed(generation), subscriber)))
    }

    pub fn confirm(&self, token: &str) -> String {
        self.absolute(&format!("/confirm/{token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_for_its_purpose_only_under_its_key() {
        let s = Signer::new(b"secret one");
        let id = Uuid::new_v4();
        let t = s.sign(Purpose::Manage, &id);
        assert_eq!(t.len(), 43);
        assert!(crate::domain::Token::parse(&t).is_some(), "the shape of a random token");
        assert_eq!(s.verify(Purpose::Manage, &t), Some(id));
        assert_eq!(Signer::new(b"secret two").verify(Purpose::Manage, &t), None);
        assert_eq!(s.verify(Purpose::Rate, &t), None, "a manage link is not a rating link");
        assert_eq!(s.verify(Purpose::Manage, &s.sign(Purpose::Rate, &id)), None);
    }

    #[test]
    fn tampered_or_foreign_tokens_do_not_verify() {
        let s = Signer::new(b"k");
        let t = s.sign(Purpose::Manage, &Uuid::new_v4());
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(b).unwrap();
            assert_eq!(s.verify(Purpose::Manage, &tampered), None, "byte {i}");
        }
        assert_eq!(s.verify(Purpose::Manage, ""), None);
        assert_eq!(s.verify(Purpose::Manage, &"é".repeat(43)), None);
        assert_eq!(s.verify(Purpose::Manage, crate::domain::Token::generate().as_str()), None);
    }

    #[test]
    fn feed_links_die_with_their_generation_and_copy_links_name_one_delivery() {
        let links = Links::new("https://p.example", b"k");
        let subscriber = Uuid::new_v4();
        let feed = links.feed(&subscriber, 0);
        let token = feed.rsplit('/').next().unwrap();
        assert_eq!(Signer::claimed_id(token), Some(subscriber));
        assert_eq!(links.signer().verify(Purpose::Feed(0), token), Some(subscriber));
        assert_eq!(
            links.signer().verify(Purpose::Feed(1), token),
            None,
            "reset: the old link is dead"
        );
        assert_eq!(links.signer().verify(Purpose::Manage, token), None);

        let copy = links.copy_path(42);
        let token = copy.strip_prefix("/d/").unwrap();
        assert_eq!(links.copy_delivery(token), Some(42));
        assert_eq!(links.copy_delivery(&links.manage_token(&subscriber)), None);
        let other = Uuid::from_u64_pair(42, 1);
        assert_eq!(links.copy_delivery(&links.signer().sign(Purpose::Copy, &other)), None);
    }

    #[test]
    fn bounce_tags_name_their_message_and_resist_forgery() {
        let s = Signer::new(b"k");
        for sent in [Sent::Delivery(7), Sent::Mail(7), Sent::Delivery(i64::MAX)] {
            let tag = s.bounce_tag(sent);
            assert_eq!(s.verify_bounce_tag(&tag), Some(sent), "{tag}");
            assert_eq!(s.verify_bounce_tag(&tag.to_ascii_uppercase()), Some(sent), "case-folded");
            assert_eq!(Signer::new(b"other").verify_bounce_tag(&tag), None);
        }
        let tag = s.bounce_tag(Sent::Delivery(7));
        assert_eq!(s.verify_bounce_tag(&tag.replacen('d', "m", 1)), None, "kind is signed");
        assert_eq!(s.verify_bounce_tag(&tag.replacen("d7", "d8", 1)), None, "id is signed");
        for bad in ["", "d", "d7-", "x7-00000000000000000000", "d-00000000000000000000", "dzz-0"] {
            assert_eq!(s.verify_bounce_tag(bad), None, "{bad}");
        }
    }
}
