"""Issue 21 point 1, deterministically: the teardown of a Redis connection lost
with an unacked message and a broadcast (fanout, auto-delete) queue on the
default channel, as the worker's is. Celery's consumer collects the connection
and then closes it; kombu's second close of the default channel restores the
unacked message through a client rebuilt from the collected transport and raises
`AttributeError: 'NoneType' object has no attribute 'hostname'`, which ends the
worker ("Unrecoverable error"). together.celery.BrokerOutageConsumer must get
through it and leave the worker ready to reconnect.

Runs against a redis-server of its own on a free port (shut down by the test)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from kombu import Connection, Exchange, Queue
from kombu import Consumer as KombuConsumer

from tests.faults.conftest import RedisServer
from together.celery import BrokerOutageConsumer, app

pytestmark = [pytest.mark.faults]


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.destroy()


def _lost_connection(redis_server) -> Connection:
    """A connection like the worker's at the moment Redis goes away."""
    url = redis_server.url
    conn = Connection(url)
    conn.connect()
    channel = conn.default_channel
    tasks = Queue("faults-tasks", Exchange("faults-tasks"), "faults-tasks")
    broadcast = Queue("faults-broadcast", Exchange("faults-broadcast", type="fanout"), auto_delete=True)
    with Connection(url) as producer:
        producer.Producer().publish({"task": 1}, exchange=tasks.exchange, routing_key="faults-tasks", declare=[tasks])
    received = []
    KombuConsumer(channel, [tasks, broadcast], callbacks=[lambda body, message: received.append(message)],
                  no_ack=False).consume()
    conn.drain_events(timeout=5)
    assert len(received) == 1 and len(channel.qos._delivered) == 1  # delivered, not acked (acks_late)
    channel._brpop_start()  # the event loop's BRPOP in flight
    redis_server.shutdown()
    time.sleep(0.2)
    return conn


def _consumer(conn: Connection) -> BrokerOutageConsumer:
    """The consumer's state that on_connection_error_after_connected reads: the
    lost connection, the app's settings, no active task, per-consumer QoS."""
    consumer = BrokerOutageConsumer.__new__(BrokerOutageConsumer)
    consumer.app = app
    consumer.connection = conn
    consumer.pool = SimpleNamespace(num_processes=2)  # only its size is read (prefetch bookkeeping)
    consumer.qos_global = False
    consumer.prefetch_multiplier = 1
    consumer.initial_prefetch_count = 2
    return consumer


def test_worker_consumer_gets_through_the_teardown_of_a_lost_redis_connection(redis_server):
    consumer = _consumer(_lost_connection(redis_server))
    consumer.on_connection_error_after_connected(ConnectionError("Connection closed by server."))
    assert consumer.connection is None  # dropped: the next blueprint start connects afresh
