"""Outbound webhook requests that cannot be turned against the platform's own network (SSRF).

An integration key chooses the URL the worker posts to, so the worker must not become a proxy into the
hosting network (the database, Redis, a cloud metadata service) nor a port scanner. Invariants:

* Only ``https://`` URLs (``http://`` only with ``PDS_WEBHOOK_ALLOW_HTTP``, for tests): patient identities
  never leave in clear. No credentials in the URL (the payload is signed with the subscription's secret).
* The host is resolved when a delivery is sent, and the target is refused when *any* of its addresses is
  loopback, private, link-local, multicast, reserved, unspecified or a cloud metadata address (loopback and
  private ones are allowed with ``PDS_WEBHOOK_ALLOW_PRIVATE``, for tests and on-premises receivers; link-local,
  metadata and the rest never are). Checking one address and letting the HTTP client resolve the name again
  would leave a window for DNS rebinding, so the connection is made to the vetted address itself, while TLS
  sends the URL's host name (SNI) and verifies the certificate against it, and the Host header carries it.
* No redirect is followed, no proxy or environment setting is consulted, and only the start of the
  receiver's answer is read.

The reasons for a refusal or a failure are for the server log: callers show the integrator one generic
message, so that a closed port, an open one that does not speak HTTP and a refused target look alike.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from requests.certs import where as default_ca_bundle
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (credentials, user data) of the cloud providers, by address: never a webhook
# target, whatever the settings. Most sit in 169.254.0.0/16 (link-local, refused anyway); these are listed
# so that the reason in the log is explicit and because some are not link-local (Alibaba's is in the shared
# address space, Azure's wire server is a public address, AWS's IPv6 one a unique local address).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean...
    "169.254.170.2",  # AWS ECS task metadata
    "169.254.169.253",  # AWS VPC DNS resolver
    "100.100.100.200",  # Alibaba Cloud
    "168.63.129.16",  # Azure wire server
    "192.0.0.192",  # Oracle Cloud (classic)
    "fd00:ec2::254",  # AWS over IPv6
    "fd00:ec2::23",  # AWS VPC DNS resolver over IPv6
))
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                                "instance-data.ec2.internal"})
LOCAL_HOSTNAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# IPv6 prefixes that carry an IPv4 address the packet ends up at (NAT64), checked as that IPv4 address.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in all but name
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": Linux connects 0.0.0.0 locally
RESPONSE_BYTES_KEPT = 8192


class EgressError(Exception):
    """The request did not get an HTTP answer. The message is for the server log only."""


class EgressRefused(EgressError):
    """The target is not allowed by the platform's policy (nothing was sent)."""


@dataclass(frozen=True)
class EgressPolicy:
    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class EgressResponse:
    status: int
    text: str
    address: str  # the vetted address the request went to (for the log)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, policy: EgressPolicy) -> str | None:
    """Why ``ip`` may not be a webhook target, or None if it may. Pure: a table of cases tests it."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded, policy)
        return f"{reason} (embedded in {ip})" if reason else None
    if isinstance(ip, ipaddress.IPv6Address) and ip.teredo is not None:
        return "Teredo tunnel address"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_loopback:
        return None if policy.allow_private else "loopback address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private or ip in _SHARED or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return None if policy.allow_private else "private address"
    if not ip.is_global:
        return "non-global address"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone id does not change the address
    except ValueError:
        return None


def url_refusal(url: str, policy: EgressPolicy) -> str | None:
    """Why ``url`` may not be a webhook target, judged without resolving it (registration and delivery),
    or None. Phrased for the integrator: it answers their registration request."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The URL is not valid."
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        return "Use an https:// URL: deliveries carry patient data and are only sent over TLS."
    if parts.username is not None or parts.password is not None:
        return "Remove the credentials from the URL: each delivery is signed with the subscription's secret."
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "The URL has no host."
    if port == 0:
        return "The URL's port is not valid."
    ip = _ip_literal(host)
    if ip is not None:
        reason = address_refusal(ip, policy)
        return f"This address cannot receive webhooks ({reason})." if reason else None
    if host in METADATA_HOSTNAMES:
        return "This host cannot receive webhooks (cloud metadata service)."
    if not policy.allow_private and (host in LOCAL_HOSTNAMES or host.endswith(".localhost")):
        return "This host cannot receive webhooks (loopback)."
    return None


def resolve(host: str, port: int, policy: EgressPolicy) -> list[IPAddress]:
    """The addresses of ``host``, all vetted; refused as a whole if any one is not allowed (a name that
    resolves to a public and a private address must not reach the private one on a later attempt)."""
    ip = _ip_literal(host)
    if ip is not None:
        addresses: list[IPAddress] = [ip]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise EgressError(f"cannot resolve {host!r}: {exc}") from exc
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise EgressError(f"{host!r} has no address")
    for address in addresses:
        reason = address_refusal(address, policy)
        if reason:
            raise EgressRefused(f"{host!r} resolves to {address}: {reason}")
    return addresses


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float, policy: EgressPolicy,
         ca_bundle: str = "") -> EgressResponse:
    """POST ``body`` to ``url`` under the policy; raises EgressRefused (nothing sent) or EgressError (no
    HTTP answer). Any HTTP status is returned, redirects included (never followed)."""
    reason = url_refusal(url, policy)
    if reason:
        raise EgressRefused(f"{url}: {reason}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostname = (parts.hostname or "").rstrip(".")
    if _ip_literal(hostname) is None:
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise EgressRefused(f"{url}: host name not encodable: {exc}") from exc
    port = parts.port or (443 if scheme == "https" else 80)
    default_port = port == (443 if scheme == "https" else 80)
    host_header = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 literal keeps its brackets
    if not default_port:
        host_header = f"{host_header}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    failures: list[str] = []
    for address in resolve(hostname, port, policy):
        pool: urllib3.HTTPConnectionPool
        if scheme == "https":
            # Connect to the vetted address; SNI and certificate verification use the URL's host name.
            sni = None if _ip_literal(hostname) is not None else hostname
            pool = urllib3.HTTPSConnectionPool(
                str(address), port, maxsize=1, retries=False, cert_reqs="CERT_REQUIRED",
                ca_certs=ca_bundle or default_ca_bundle(), server_hostname=sni, assert_hostname=hostname)
        else:
            pool = urllib3.HTTPConnectionPool(str(address), port, maxsize=1, retries=False)
        try:
            resp = pool.urlopen("POST", target, body=body, headers={**headers, "Host": host_header},
                                redirect=False, retries=False, assert_same_host=False, preload_content=False,
                                timeout=urllib3.Timeout(connect=timeout, read=timeout))
            try:
                data = resp.read(RESPONSE_BYTES_KEPT, decode_content=True)
            except HTTPError:
                data = b""  # the status is the answer; a body cut short does not change it
            finally:
                resp.release_conn()
            return EgressResponse(status=resp.status, text=data.decode("utf-8", "replace"),
                                  address=str(address))
        except (NewConnectionError, ConnectTimeoutError) as exc:
            # Nothing was sent: the next vetted address of the same name may answer (IPv6 then IPv4).
            failures.append(f"{address}: {type(exc).__name__}: {exc}")
        except (HTTPError, OSError, ValueError) as exc:
            raise EgressError(f"{url} via {address}: {type(exc).__name__}: {exc}") from exc
        finally:
            pool.close()
    raise EgressError(f"{url}: cannot connect ({'; '.join(failures)})")
