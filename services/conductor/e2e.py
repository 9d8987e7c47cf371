"""End-to-end encryption in the keystore: each agent's Olm account and Olm sessions, its
Megolm outbound session per group and the inbound sessions others shared with it, all
vodozemac objects that never leave the conductor except as pickles encrypted with a key
derived from the agent's secret.

A message is encrypted once, under the author's outbound session for its group; the
session's key reaches each receiver as a KeyShare: the GroupKey, Olm-encrypted to the
receiver (a session opened with its published identity and fallback keys), signed by the
author. A session rotates when a receiver it was meant for is no longer one (removed, or
left), after `rotation_messages` messages and after `rotation_seconds`.
"""

import logging

import vodozemac

from kizuna.v1 import common_pb2, conductor_pb2
from kizuna_node.common import ids
from kizuna_node.common.errors import InvalidArgument, KizunaError, NotFound, PermissionDenied, parse
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import MAX_BATCH, check_agent_key, signed_as, verify_signed
from kizuna_node.conductor.store import ConductorStore

log = logging.getLogger("kizuna.conductor")

ROTATION_MESSAGES = 100  # as Matrix's default
ROTATION_SECONDS = 7 * 24 * 3600
OLM_SESSIONS_KEPT = 4  # per peer: the most recently used; older ones are forgotten
MAX_PLAINTEXT = 256 * 1024

PRE_KEY = 0


def _curve(raw: bytes, what: str) -> vodozemac.Curve25519PublicKey:
    try:
        return vodozemac.Curve25519PublicKey.from_bytes(raw)
    except vodozemac.KeyException:
        raise InvalidArgument(f"{what} must be a 32-byte Curve25519 key") from None


class GroupCrypto:
    """`pickle_key(agent)`: the 32-byte key the agent's pickles are encrypted with;
    `sign(agent, data)`: the agent's ed25519 signature."""

    def __init__(self, store: ConductorStore, pickle_key, sign, rotation_messages: int = ROTATION_MESSAGES,
                 rotation_seconds: float = ROTATION_SECONDS):
        self._store = store
        self._pickle_key = pickle_key
        self._sign = sign
        self.rotation_messages = rotation_messages
        self.rotation_seconds = rotation_seconds
        # What every message and key share would otherwise read and unpickle again; each
        # change is still written at once. The Olm keys never change once made.
        self._olm_keys: dict[bytes, tuple[bytes, bytes]] = {}
        self._outbound: dict[tuple[bytes, str], tuple[conductor_pb2.StoredGroupSession, vodozemac.GroupSession]] = {}

    # -- Olm: one agent to another ------------------------------------------------------

    def _account(self, agent: bytes) -> vodozemac.Account:
        pickle = self._store.get_olm_account(agent)
        if pickle is not None:
            return vodozemac.Account.from_pickle(pickle, self._pickle_key(agent))
        account = vodozemac.Account()
        account.generate_fallback_key()  # not marked published: vodozemac would then list it no more
        self._store.put_olm_account(agent, account.pickle(self._pickle_key(agent)))
        return account

    def olm_keys(self, agent: bytes) -> tuple[bytes, bytes]:
        """The agent's Olm identity key and fallback key (its account is made on first use)."""
        keys = self._olm_keys.get(agent)
        if keys is None:
            account = self._account(agent)
            fallback = list(account.fallback_key.values())
            keys = self._olm_keys[agent] = (account.curve25519_key.to_bytes(), fallback[0].to_bytes())
        return keys

    def _olm_encrypt(self, agent: bytes, holder: conductor_pb2.KeyHolder, plaintext: bytes, changes: dict):
        """(type, ciphertext) of `plaintext` for the holder, on the agent's newest Olm session
        with it, or on a new one opened with the holder's identity and fallback keys."""
        identity = _curve(holder.olm_identity_key, "olm_identity_key")
        for key, stored in self._store.olm_sessions(agent, holder.agent):
            if stored.peer_identity_key == holder.olm_identity_key:
                session = vodozemac.Session.from_pickle(stored.pickle, self._pickle_key(agent))
                break
        else:
            account = changes.get("account") or self._account(agent)
            session = account.create_outbound_session(identity, _curve(holder.olm_fallback_key, "olm_fallback_key"))
            changes["account"] = account
        olm_type, ciphertext = session.encrypt(plaintext).to_parts()
        changes.setdefault("olm", []).append((session.session_id, conductor_pb2.StoredOlmSession(
            peer=holder.agent, peer_identity_key=holder.olm_identity_key,
            pickle=session.pickle(self._pickle_key(agent)), last_used=now_micros())))
        return olm_type, ciphertext

    def _olm_decrypt(self, agent: bytes, share: common_pb2.KeyShare, changes: dict) -> bytes:
        message = vodozemac.AnyOlmMessage.from_parts(share.olm_type, share.olm_ciphertext)
        stored = [(key, s) for key, s in self._store.olm_sessions(agent, share.sender)
                  if s.peer_identity_key == share.sender_identity_key]
        for _, one in stored:
            session = vodozemac.Session.from_pickle(one.pickle, self._pickle_key(agent))
            if share.olm_type == PRE_KEY and not session.session_matches(message.to_pre_key()):
                continue
            try:
                plaintext = session.decrypt(message)
            except vodozemac.OlmDecryptionException:
                continue
            break
        else:
            if share.olm_type != PRE_KEY:
                raise PermissionDenied("the key share opens with no Olm session held with its sender")
            account = changes.get("account") or self._account(agent)
            try:
                session, plaintext = account.create_inbound_session(
                    _curve(share.sender_identity_key, "sender_identity_key"), message.to_pre_key())
            except (vodozemac.SessionCreationException, vodozemac.DecodeException) as exc:
                raise PermissionDenied(f"the key share does not open: {exc}") from None
            changes["account"] = account
            if len(stored) >= OLM_SESSIONS_KEPT:
                self._store.forget_olm_sessions([key for key, _ in stored[OLM_SESSIONS_KEPT - 1:]])
        changes.setdefault("olm", []).append((session.session_id, conductor_pb2.StoredOlmSession(
            peer=share.sender, peer_identity_key=share.sender_identity_key,
            pickle=session.pickle(self._pickle_key(agent)), last_used=now_micros())))
        return plaintext

    def _write(self, agent: bytes, changes: dict) -> None:
        account = changes.get("account")
        self._store.put_crypto(
            agent, account=account.pickle(self._pickle_key(agent)) if account is not None else None,
            olm_sessions=changes.get("olm", ()), outbound=changes.get("outbound"), current=changes.get("current", False),
            inbound=changes.get("inbound", ()))

    # -- Megolm: the author's session for a group ------------------------------------------

    def _due(self, current: conductor_pb2.StoredGroupSession | None, receivers: set) -> bool:
        """Whether the next message needs a new outbound session."""
        if current is None:
            return True
        if current.info.message_index >= self.rotation_messages:
            return True
        if now_micros() - current.info.created >= self.rotation_seconds * 1_000_000:
            return True
        return any(e.agent not in receivers for e in current.entitled)  # removed, or left

    def _new_outbound(self, agent: bytes, group_uuid: str) -> conductor_pb2.StoredGroupSession:
        session = vodozemac.GroupSession()
        own = vodozemac.InboundGroupSession(session.session_key)
        key = self._pickle_key(agent)
        log.info("new group session for agent %s in group %s", ids.agent(agent), group_uuid)
        return conductor_pb2.StoredGroupSession(
            info=conductor_pb2.GroupSessionInfo(group_uuid=group_uuid, sender=agent, session_id=session.session_id,
                                                outbound=True, created=now_micros()),
            pickle=session.pickle(key), own_pickle=own.pickle(key))

    def _key_share(self, agent: bytes, stored: conductor_pb2.StoredGroupSession, holder: conductor_pb2.KeyHolder,
                   first_index: int, changes: dict) -> common_pb2.Signed:
        """The session's key from `first_index`, Olm-encrypted to the holder, signed by the agent."""
        own = vodozemac.InboundGroupSession.from_pickle(stored.own_pickle, self._pickle_key(agent))
        exported = own.export_at(first_index)
        if exported is None:
            raise NotFound("the session's key from that index is no longer held")
        group_key = common_pb2.GroupKey(group_uuid=stored.info.group_uuid, sender=agent,
                                        session_id=stored.info.session_id, session_key=exported.to_base64(),
                                        first_index=first_index)
        olm_type, ciphertext = self._olm_encrypt(agent, holder, group_key.SerializeToString(), changes)
        identity, _ = self.olm_keys(agent)
        share = common_pb2.KeyShare(sender=agent, receiver=holder.agent, group_uuid=stored.info.group_uuid,
                                    session_id=stored.info.session_id, sender_identity_key=identity,
                                    olm_type=olm_type, olm_ciphertext=ciphertext, timestamp=now_micros())
        body = share.SerializeToString()
        return signed_as(agent, body, self._sign(agent, body))

    def encrypt(self, agent: bytes, group_uuid: str, plaintext: bytes, receivers) -> tuple:
        """(EncryptedPayload, key shares, rotated) for a message the agent sends to
        `receivers` (KeyHolders) in the group."""
        if not group_uuid:
            raise InvalidArgument("group_uuid is required")
        if len(plaintext) > MAX_PLAINTEXT:
            raise InvalidArgument(f"plaintext is larger than {MAX_PLAINTEXT} bytes")
        holders = {}
        for holder in receivers:
            check_agent_key(holder.agent, "receiver")
            holders[holder.agent] = holder
        stored, session = self._outbound.pop((agent, group_uuid), None) or (
            self._store.current_session(agent, group_uuid), None)
        rotated = self._due(stored, set(holders))
        if rotated:
            stored, session = self._new_outbound(agent, group_uuid), None
        key = self._pickle_key(agent)
        if session is None:
            session = vodozemac.GroupSession.from_pickle(stored.pickle, key)
        changes: dict = {"outbound": stored, "current": rotated}
        entitled = {e.agent for e in stored.entitled}
        shares = []
        for holder in holders.values():
            if holder.agent in entitled:
                continue
            stored.entitled.add(agent=holder.agent, first_index=session.message_index)
            if not (holder.olm_identity_key and holder.olm_fallback_key):
                continue  # it asks, once it holds the message
            try:
                shares.append(self._key_share(agent, stored, holder, session.message_index, changes))
            except InvalidArgument as exc:  # keys no Olm session opens with: one receiver's, not the send's, fault
                log.warning("no key share for %s: %s", ids.agent(holder.agent), exc.message)
        ciphertext = session.encrypt(plaintext).to_bytes()
        stored.pickle = session.pickle(key)
        stored.info.message_index = session.message_index
        stored.info.shared_with = len(stored.entitled)
        self._write(agent, changes)
        self._outbound[(agent, group_uuid)] = (stored, session)  # kept only once written: a failure reads it again
        return common_pb2.EncryptedPayload(session_id=stored.info.session_id, ciphertext=ciphertext), shares, rotated

    def share(self, agent: bytes, group_uuid: str, session_id: str, holder: conductor_pb2.KeyHolder) -> common_pb2.Signed:
        """A new key share of one of the agent's outbound sessions, for a receiver it was
        meant for, from the first index it was meant to read."""
        check_agent_key(holder.agent, "receiver.agent")
        stored = self._store.outbound_session(agent, session_id)
        if stored is None or stored.info.group_uuid != group_uuid:
            raise NotFound("the agent has no such session in that group")
        for entitlement in stored.entitled:
            if entitlement.agent == holder.agent:
                changes: dict = {}
                share = self._key_share(agent, stored, holder, entitlement.first_index, changes)
                self._write(agent, changes)
                return share
        raise PermissionDenied("the session was not meant for that agent")

    # -- receiving ------------------------------------------------------------------------

    def import_keys(self, agent: bytes, shares) -> list[conductor_pb2.ImportedKey]:
        """Opens each key share sent to the agent and keeps its session (a session held
        from an earlier index is kept as it is)."""
        if len(shares) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} key shares at once")
        results = []
        for signed in shares:
            result = conductor_pb2.ImportedKey()
            try:
                share = parse(common_pb2.KeyShare, verify_signed(signed, "key share"), "key share")
                result.group_uuid, result.sender, result.session_id = share.group_uuid, share.sender, share.session_id
                self._import(agent, signed, share)
            except KizunaError as exc:
                log.info("a key share for agent %s refused: %s", ids.agent(agent), exc.message)
                result.error = exc.message
            results.append(result)
        return results

    def _import(self, agent: bytes, signed: common_pb2.Signed, share: common_pb2.KeyShare) -> None:
        if share.sender != signed.author:
            raise PermissionDenied("a key share is signed by its sender")
        if share.receiver != agent:
            raise PermissionDenied("the key share is for another agent")
        held = self._store.inbound_session(agent, share.sender, share.session_id)
        if held is not None:
            return  # a share sent twice (or asked for again): its Olm message is spent
        changes: dict = {}
        group_key = parse(common_pb2.GroupKey, self._olm_decrypt(agent, share, changes), "group key")
        if (group_key.sender, group_key.group_uuid, group_key.session_id) != \
                (share.sender, share.group_uuid, share.session_id):
            raise PermissionDenied("the group key inside a share names another session")
        try:
            session = vodozemac.InboundGroupSession.import_session(vodozemac.ExportedSessionKey(group_key.session_key))
        except (vodozemac.SessionKeyDecodeException, vodozemac.DecodeException, ValueError):
            raise InvalidArgument("the group key holds no valid session key") from None
        if session.session_id != share.session_id:
            raise PermissionDenied("the session key is of another session")
        changes["inbound"] = [conductor_pb2.StoredGroupSession(
            info=conductor_pb2.GroupSessionInfo(group_uuid=share.group_uuid, sender=share.sender,
                                                session_id=share.session_id, message_index=session.first_known_index,
                                                created=now_micros()),
            pickle=session.pickle(self._pickle_key(agent)))]
        self._write(agent, changes)

    def decrypt(self, items) -> list[tuple[bytes, str, bool]]:
        """(plaintext, error, missing_key) for each GroupCiphertext."""
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} messages are decrypted at once")
        return [self._decrypt_one(item) for item in items]

    def _decrypt_one(self, item) -> tuple[bytes, str, bool]:
        stored = self._store.inbound_session(item.agent, item.sender, item.encrypted.session_id)
        if stored is None:
            return b"", "the key of this message's session has not reached this agent", True
        if stored.info.group_uuid != item.group_uuid:
            return b"", "the message's session belongs to another group", False
        session = vodozemac.InboundGroupSession.from_pickle(stored.pickle, self._pickle_key(item.agent))
        try:
            message = vodozemac.MegolmMessage.from_bytes(item.encrypted.ciphertext)
        except (vodozemac.DecodeException, ValueError):
            return b"", "the ciphertext is no Megolm message", False
        try:
            return session.decrypt(message).plaintext, "", False
        except vodozemac.MegolmDecryptionException as exc:
            if "unknown message index" in str(exc):
                return b"", "the key held for this session opens only later messages", True
            return b"", "the message does not decrypt with its session", False

    def list_sessions(self, agent: bytes) -> list[conductor_pb2.GroupSessionInfo]:
        return [stored.info for stored in self._store.group_sessions(agent)]
