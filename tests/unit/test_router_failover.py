"""The AWS failover figures `make bench` prints for each traffic router."""

from __future__ import annotations

from bench.router_failover import aws_rows, aws_timings


def test_cloudflare_moves_clients_after_interval_times_consecutive_failures():
    cloudflare, _ = aws_timings(cloudflare_interval=60, cloudflare_down=2)
    assert (cloudflare.detect_s, cloudflare.stale_s, cloudflare.failover_s) == (120, 0, 120)


def test_route53_adds_the_record_ttl_and_the_router_s_answer_cache():
    _, route53 = aws_timings(route53_interval=30, route53_threshold=3, record_ttl=60, answer_s=5)
    assert (route53.detect_s, route53.stale_s, route53.failover_s) == (90, 65, 155)
    _, fast = aws_timings(route53_interval=10, route53_threshold=3, record_ttl=60, answer_s=5)
    assert fast.failover_s == 95


def test_the_defaults_are_the_configured_ones():
    rows = aws_rows(aws_timings())
    assert [row[0] for row in rows] == ["cloudflare", "route53"]
    assert rows[1][3] == "155 s"  # 30 s x 3 + 60 s TTL + 5 s in the router
