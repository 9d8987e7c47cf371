"""File attachments: a file sent with a message is encrypted with a key of its own, stored
chunk by chunk in the group's space under the hash of each chunk's ciphertext, and named
(key and chunk addresses) only inside the message's Megolm ciphertext; a member fetches it
on demand, each chunk checked before its bytes are handed on, the whole against its SHA-256."""

import asyncio
import hashlib
import logging

from kizuna.v1 import common_pb2, group_dht_pb2, lobby_pb2
from kizuna_node.common import file_chunks
from kizuna_node.common.errors import UNREACHABLE, DataLoss, InvalidArgument, NotFound, Unavailable
from kizuna_node.common.hashing import now_micros
from kizuna_node.common.keys import sign_into
from kizuna_node.lobby.directory import op_of
from kizuna_node.lobby.groups import Groups
from kizuna_node.lobby.messaging import Messaging
from kizuna_node.lobby.store import LobbyStore

log = logging.getLogger("kizuna.lobby")

MAX_PIECE_BYTES = 1024 * 1024  # bytes per SendFile request
MAX_NAME = 255
PARALLEL_CHUNKS = 4  # chunks stored at once


class Attachments:
    def __init__(self, store: LobbyStore, conductor, dht, groups: Groups, messaging: Messaging):
        self._store = store
        self._conductor = conductor
        self._dht = dht
        self._groups = groups
        self._messaging = messaging

    async def send_file(self, agent: bytes, header: lobby_pb2.FileHeader, pieces):
        """Sends a message carrying a file whose bytes come in `pieces` (an async iterator).
        Nothing is stored until the whole file came and matched the header's size; then its
        chunks are stored in the group's space and the message is sent as any other.
        Returns what send_group_message returns."""
        info = self._messaging.check_sendable(agent, header.group_uuid, header.payload, header.reply_to, True)
        if not 0 < header.size <= file_chunks.MAX_FILE_BYTES:
            raise InvalidArgument(f"a file is 1 byte to {file_chunks.MAX_FILE_BYTES} bytes, not {header.size}")
        if not header.name.strip() or len(header.name) > MAX_NAME or len(header.media_type) > MAX_NAME:
            raise InvalidArgument(f"a file needs a name, and name and media type are at most {MAX_NAME} characters")
        key = file_chunks.new_key()
        sealed, digest = await self._read_sealed(key, header.size, pieces)
        semaphore = asyncio.Semaphore(PARALLEL_CHUNKS)

        async def store(ciphertext: bytes):
            async with semaphore:
                await self._store_chunk(agent, info.dna_hash, ciphertext)
        await asyncio.gather(*(store(ciphertext) for _, ciphertext in sealed))
        ref = common_pb2.FileRef(name=header.name.strip(), size=header.size, media_type=header.media_type,
                                 sha256=digest, key=key, chunk_size=file_chunks.CHUNK_BYTES,
                                 chunks=[address for address, _ in sealed])
        return await self._messaging.send_group_message(agent, header.group_uuid, header.payload,
                                                        header.reply_to, attachments=[ref])

    @staticmethod
    async def _read_sealed(key: bytes, size: int, pieces) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The file's chunks, sealed, as (address, ciphertext), and its SHA-256; InvalidArgument
        when the bytes that came are not `size` bytes."""
        sealed, digest, buffer, total = [], hashlib.sha256(), bytearray(), 0
        async for piece in pieces:
            if len(piece) > MAX_PIECE_BYTES:
                raise InvalidArgument(f"a SendFile request carries at most {MAX_PIECE_BYTES} bytes")
            total += len(piece)
            if total > size:
                raise InvalidArgument(f"more bytes came than the file's size of {size}")
            digest.update(piece)
            buffer += piece
            while len(buffer) >= file_chunks.CHUNK_BYTES or (total == size and buffer):
                chunk = bytes(buffer[:file_chunks.CHUNK_BYTES])
                del buffer[:file_chunks.CHUNK_BYTES]
                sealed.append(file_chunks.seal_chunk(key, len(sealed), chunk))
        if total != size:
            raise InvalidArgument(f"the file ended after {total} of its {size} bytes")
        return sealed, digest.digest()

    async def _store_chunk(self, agent: bytes, space: bytes, ciphertext: bytes) -> None:
        """A chunk written to its holders with a quorum; when too few of them answer, kept on
        this node, whose anti-entropy brings it to the others as they come back."""
        signed = await sign_into(self._conductor.sign, agent, group_dht_pb2.Op(
            space=space, kind=group_dht_pb2.STORE_ENTRY, author=agent, timestamp=now_micros(),
            entry_type=file_chunks.ENTRY_TYPE, entry=ciphertext).SerializeToString())
        try:
            await self._dht.publish(signed)
        except UNREACHABLE as exc:
            log.info("a file chunk missed its quorum (%s); kept on this node for anti-entropy", exc.message)
            await self._dht.publish(signed, local_only=True)

    async def fetch_file(self, agent: bytes, group_uuid: str, message_hash: bytes, attachment: int = 0):
        """Yields the file of a message in the agent's history as FileChunks, in order. Each
        chunk is checked (its address, its key) before it is yielded, and the last is held
        back until the whole file matched its size and SHA-256: a stream that ends without
        an error carries the file exactly as it was sent."""
        info = self._groups.require_group(agent, group_uuid)
        record = self._store.get_message(agent, message_hash)
        if record is None or record.entry.group_uuid != group_uuid:
            raise NotFound("no such message in this group")
        if attachment >= len(record.entry.attachments):
            raise NotFound(f"the message has no attachment {attachment}")
        ref = record.entry.attachments[attachment]
        if len(ref.chunks) != -(-ref.size // max(ref.chunk_size, 1)):
            raise DataLoss("the file's reference names the wrong number of chunks for its size")
        digest, offset, held = hashlib.sha256(), 0, None
        for index, address in enumerate(ref.chunks):
            signed = await self._dht.get(info.dna_hash, address)
            if signed is None:
                raise Unavailable(f"chunk {index} of the file is not in the group's space (yet)")
            data = file_chunks.open_chunk(ref.key, index, address, op_of(signed).entry)
            digest.update(data)
            if held is not None:
                yield held
            held = lobby_pb2.FileChunk(data=data, offset=offset, size=ref.size)
            offset += len(data)
        if offset != ref.size or digest.digest() != ref.sha256:
            raise DataLoss("the file fetched does not match its SHA-256")
        if held is not None:
            yield held
