"""Credentials at login: an authenticator mixin that obtains a short-lived SSH certificate
for each user when they log in, keeps it in JupyterHub's encrypted ``auth_state`` and
renews it through ``refresh_user``. Where `myproxy_server` is set, the same login also gets
an X.509 credential from MyProxy (grid sites), which the spawners deliver to the server.

Mix it in front of any authenticator::

    class LDAPCredentialAuthenticator(CredentialIssuingAuthenticator, LDAPAuthenticator): ...
    class GenericOAuthCredentialAuthenticator(CredentialIssuingAuthenticator, GenericOAuthenticator): ...

With PAM it is ready-made as ``hpchub-pam``, with an OpenID Connect provider as ``hpchub-oidc``
(hpchub.auth_oidc). The CA service checks the login itself: the password (PAM there, once),
or the provider's ID token. Renewal follows the authenticator: its own ``refresh_user`` runs
first, and a user it sends back to the login page gets no new certificate. Spawners read the
result with ``CredentialSet.from_auth_state(await user.get_auth_state())``.
"""

from __future__ import annotations

import os
import socket
import time

from jupyterhub.auth import Authenticator, PAMAuthenticator
from tornado import web
from traitlets import Bool, Dict, Integer, List, Unicode, default, validate

from .credentials import CredentialError, CredentialSet, IssuerUnavailable, LoginRequired, SSHCredential
from .credentials.errors import ConfigurationError, LoginRefused
from .credentials.myproxy import MyProxyIssuer
from .credentials.issuers import Issuer, LocalCAIssuer, LoginProof, extra_issuer_settings
from .credentials.model import MAIN_ISSUER
from .credentials.static_account import StaticServiceAccount
from .credentials.ssh_ca import CertificatePolicy, SSHCertificateAuthority, check_cluster_username


def login_refused(status: int, user_message: str, reason: str = "Sign-in refused") -> web.HTTPError:
    """The error for a refused login: JupyterHub's error page shows `reason` as its heading and
    the message once below it (an HTTPError's message alone would be shown twice)."""
    error = web.HTTPError(status, "%s", user_message, reason=reason)
    error.jupyterhub_message = user_message
    return error


class CredentialIssuingAuthenticator(Authenticator):
    """Issue short-lived credentials at login, keep them in auth_state, renew them."""

    credential_issuer = Unicode(
        "local-ca",
        config=True,
        help="""Where users' SSH certificates come from.

        `local-ca`: the hub signs them with the CA key in `ssh_ca_key` (the key lives on the
        hub host; renewal needs no password).
        `ca-service`: a separate CA service (`hpchub ca serve`, or NERSC's sshproxy) at
        `ca_service_url`; the CA key stays off the hub host.
        """,
    )

    ssh_ca_key = Unicode(
        "",
        config=True,
        help="""Path to the SSH user CA's private key (for `credential_issuer = "local-ca"`).

        It must be a regular file readable by the hub's user and by nobody else (mode 0600):
        the hub refuses to start otherwise. Login nodes trust its public half through
        sshd's `TrustedUserCAKeys`. Example: `/etc/hpchub/ssh-ca/user_ca`.
        """,
    )

    ssh_ca_ledger = Unicode(
        "",
        config=True,
        help="""File in which the local CA appends one line per certificate it signs (serial,
        key id, principal, expiry): the record `hpchub ca revoke --user NAME` revokes from.
        Default: `<ssh_ca_key>.issued.jsonl`.
        """,
    )

    ssh_revoked_keys = Unicode(
        "",
        config=True,
        help="""The key revocation list (KRL) that the login nodes' sshd reads (`RevokedKeys`), or a
        copy of it the hub can read, for `credential_issuer = "local-ca"`: a certificate it
        revokes (`hpchub ca revoke --serial N | --user NAME`) is never renewed, and its user is
        asked to log in again. Empty: revocation is left to the login nodes, and a revoked
        certificate is renewed at the next refresh - set it wherever certificates are revoked.
        The list must exist (an empty one: `ssh-keygen -k -f PATH`): the hub does not start
        without it, and renews no certificate while it cannot be read, as sshd accepts no key.
        Example: `/etc/hpchub/revoked.krl`.""",
    )

    certificate_validity = Integer(
        12 * 3600,
        config=True,
        help="""How long each user certificate is valid, in seconds (default 12 hours).

        Short is safer: a stolen certificate is useless after this time. The hub renews it
        before it expires (see `renew_when_remaining`), so users do not notice.
        """,
    )

    renew_when_remaining = Integer(
        3600,
        config=True,
        help="""Renew a user's certificate when less than this many seconds of validity
        remain (checked at every auth refresh: see `auth_refresh_age`, and before spawn and stop).
        Keep it well above `auth_refresh_age` so a certificate never lapses between checks.
        """,
    )

    max_session_length = Integer(
        7 * 86400,
        config=True,
        help="""Longest time, in seconds, that a login keeps being renewed without the user
        logging in again (default 7 days, as the CA service's own limit; sshproxy's
        certificates last a day at most). 0 means no limit, which a centre rarely wants: a
        stolen session would be renewed for ever. With an identity provider, its own session
        and refresh tokens end a login sooner if they end first.
        """,
    )

    required_amr = List(
        Unicode(),
        config=True,
        help="""Single sign-on: refuse a login unless the identity provider says (the ID token's
        `amr` claim, RFC 8176) it used at least one of these methods, e.g. `["otp", "mfa", "hwk"]`
        for a second factor. Empty: any login the provider accepts. Set the CA service's
        `oidc_required_amr` too, so that it holds even for another hub.""",
    )

    certificate_source_addresses = List(
        Unicode(),
        config=True,
        help="""If set, certificates carry the `source-address` option: they are accepted only
        from these addresses or CIDR blocks (e.g. the hub's address as the login nodes see it).
        """,
    )

    certificate_permit_pty = Bool(
        True,
        config=True,
        help="""Whether certificates allow a terminal (no `no-pty` option). Set False when the
        hub needs no interactive sessions on the cluster.""",
    )

    certificate_force_command = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""If set, certificates carry `force-command`: sshd runs this command whatever the
        client asks (e.g. a site wrapper that starts only Jupyter).""",
    )

    cluster_usernames = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""Map from hub usernames to cluster usernames, for users whose names differ (e.g.
        `{"alice@uni.example": "alice"}`). A name not in the map is used as it is. The result
        must be a valid cluster username, or the login is refused with a clear message.
        """,
    )

    hub_name = Unicode(
        config=True,
        help="""Name of this hub in the key id of every certificate it obtains (`hpchub hub=NAME
        user=... serial=...`), which sshd logs at each login. Default: the host name.""",
    )

    service_account = Unicode(
        "hpchub",
        config=True,
        help="""The cluster account the hub uses for what no single user can do: one status
        query for all users' jobs, cluster information for forms, cancelling a job whose user's
        credential is gone. It must exist on the cluster; it never runs user code.""",
    )

    service_account_key = Unicode(
        "",
        config=True,
        help="""A static private key (mode 0600) for the service account, with its certificate in
        `service_account_certificate`, for a CA that gives the hub no service certificates
        (NERSC's sshproxy has no `/service_pair/`). The site renews the certificate by its own
        means (e.g. a cron job that runs sshproxy for the account) and the hub re-reads it when
        the file changes; it says in its log when the certificate has expired. Empty: the
        issuer signs the service account's certificates itself.""",
    )

    service_account_certificate = Unicode(
        "", config=True, help="The certificate of `service_account_key`. Default: `<service_account_key>-cert.pub`."
    )

    ca_service_url = Unicode(
        "",
        config=True,
        help="""URL of the CA service (`credential_issuer = "ca-service"`), e.g.
        `https://ca.example.org:8443`. HTTPS only: users' passwords travel to it. NERSC's sshproxy
        answers the login call too (`/create_pair/<scope>/`).""",
    )

    ca_service_scope = Unicode("default", config=True, help="The scope in `/create_pair/<scope>/`.")

    ca_service_token = Unicode(
        config=True,
        help="""This hub's token for the CA service (its operator configures the token's SHA-256).
        Default: the HPCHUB_CA_SERVICE_TOKEN environment variable. Prefer `ca_service_token_file`
        over writing the token into a config file.""",
    )

    ca_service_token_file = Unicode(
        "", config=True, help="A file (mode 0600) holding this hub's token for the CA service."
    )

    ca_service_ca_bundle = Unicode(
        "",
        config=True,
        help="""PEM file of the certificate authorities that may sign the CA service's HTTPS
        certificate. Default: the system's trust store. The server is always verified.""",
    )

    extra_issuers = Dict(
        key_trait=Unicode(),
        value_trait=Dict(),
        config=True,
        help="""Further SSH user CAs, for clusters whose login nodes trust a CA other than the
        main one (`credential_issuer`). By name (lower-case letters, digits and -), the settings
        of each, named as the main issuer's: `credential_issuer` (`local-ca` or `ca-service`);
        for a local CA `ssh_ca_key` (required), `ssh_ca_ledger`, `ssh_revoked_keys`; for a CA
        service `ca_service_url`, `ca_service_token_file` (required: a token is never sent to
        another service), `ca_service_scope`, `ca_service_ca_bundle`. Nothing is taken from the
        main issuer's settings except the certificate policy (validity, source addresses, pty,
        force-command), `hub_name` and `max_session_length`.

        At login the user gets a certificate from each, kept in auth_state beside the main one
        and renewed as it is; a cluster in `HPCSpawner.clusters` names the one its login nodes
        trust (`"issuer": NAME`), which also signs that cluster's service account. A further
        issuer that refuses or cannot be reached at login does not stop the login: servers on
        its clusters say that the certificate is missing.

        A one-time code is good once: with `request_otp`, at most one check of the password and
        code may happen at login (the hub's own, or that of one issuer that checks the user
        itself, as the CA service does), and the hub does not start otherwise.
        Example: `{"ge": {"credential_issuer": "local-ca", "ssh_ca_key": "/etc/hpchub/ge-ca/user_ca"}}`.""",
    )

    myproxy_server = Unicode(
        "",
        config=True,
        help="""Host name of a MyProxy server (grid sites): at login the hub also gets an X.509
        credential for the user from it, with the same user name and password, and the
        spawners deliver it to the server (`X509_USER_PROXY`). Empty: no grid credential.
        The server may be an online CA (PAM-checked passwords) or hold stored credentials.""",
    )
    myproxy_port = Integer(7512, config=True, help="The MyProxy server's port.")
    myproxy_ca_certs = Unicode(
        "/etc/grid-security/certificates",
        config=True,
        help="""Trust roots for the MyProxy server's certificate: a PEM file, or a directory of
        hashed CA certificates (the grid's `/etc/grid-security/certificates`). The server is
        always verified, and its name checked, before a password is sent.""",
    )
    myproxy_server_name = Unicode(
        "", config=True, help="The name the MyProxy server's certificate must carry. Default: `myproxy_server`."
    )
    myproxy_lifetime = Integer(
        12 * 3600,
        config=True,
        help="""Seconds of validity asked for the X.509 credential (the server may grant less).
        Renewal needs the password, so this is how long a login session can use grid tools:
        when less than `myproxy_min_remaining` is left, the user is asked to log in again.""",
    )
    myproxy_min_remaining = Integer(
        600, config=True, help="Ask the user to log in again when their X.509 credential has less than this left."
    )
    myproxy_key_type = Unicode(
        "rsa",
        config=True,
        help="""Key made on the hub for the X.509 credential: `rsa` (2048 bits) or `ec` (P-256).
        MyProxy's online CA (6.2, Debian's) signs RSA keys only and refuses `ec`.""",
    )

    @default("ca_service_token")
    def _default_ca_service_token(self):
        return os.environ.get("HPCHUB_CA_SERVICE_TOKEN", "")

    @default("hub_name")
    def _default_hub_name(self):
        return socket.gethostname()

    # Credentials live in auth_state, which must be encrypted and kept; refresh before a
    # spawn or stop so that spawners always get a valid certificate.
    @default("enable_auth_state")
    def _default_enable_auth_state(self):
        return True

    @default("refresh_pre_spawn")
    def _default_refresh_pre_spawn(self):
        return True

    @default("refresh_pre_stop")
    def _default_refresh_pre_stop(self):
        return True

    @validate("credential_issuer")
    def _validate_issuer(self, proposal):
        if proposal.value not in ("local-ca", "ca-service"):
            raise ValueError(f"credential_issuer must be 'local-ca' or 'ca-service', not {proposal.value!r}")
        return proposal.value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._issuer: Issuer | None = None
        self._extra_issuers: dict[str, Issuer] | None = None
        self._grid_issuer: MyProxyIssuer | None = None
        self._service_credentials: dict[tuple[str, str], SSHCredential] = {}  # by (issuer, account)
        # Fail at start-up, not at the first login, if an issuer is misconfigured.
        self.issuer
        self.extra_issuer_objects
        self.grid_issuer
        self._static_service_account = StaticServiceAccount(
            check_cluster_username(self.service_account), self.service_account_key,
            self.service_account_certificate) if self.service_account_key else None

    # ----- the issuer -------------------------------------------------------------
    @property
    def certificate_policy(self) -> CertificatePolicy:
        return CertificatePolicy(
            validity=self.certificate_validity,
            source_addresses=tuple(self.certificate_source_addresses),
            permit_pty=self.certificate_permit_pty,
            force_command=self.certificate_force_command,
        )

    @property
    def issuer(self) -> Issuer:
        if self._issuer is None:
            self._issuer = self.make_issuer()
        return self._issuer

    @property
    def grid_issuer(self) -> MyProxyIssuer | None:
        if not self.myproxy_server:
            return None
        if self._grid_issuer is None:
            self._grid_issuer = MyProxyIssuer(
                self.myproxy_server, self.myproxy_port, ca_certs=self.myproxy_ca_certs,
                server_name=self.myproxy_server_name, lifetime=self.myproxy_lifetime, key_type=self.myproxy_key_type)
        return self._grid_issuer

    def make_issuer(self, settings=None) -> Issuer:
        """An issuer from its settings: the authenticator's own (the main issuer), or one
        entry of extra_issuers (an IssuerSettings)."""
        settings = settings or self
        where = getattr(settings, "where", "CredentialIssuingAuthenticator")
        if settings.credential_issuer == "local-ca":
            if not settings.ssh_ca_key:
                raise ConfigurationError(f"set {where}.ssh_ca_key (the SSH user CA's key)")
            ca = SSHCertificateAuthority(settings.ssh_ca_key,
                                         settings.ssh_ca_ledger or f"{settings.ssh_ca_key}.issued.jsonl")
            return LocalCAIssuer(ca, self.certificate_policy, self.hub_name, self.max_session_length,
                                 revoked_keys=settings.ssh_revoked_keys or None)
        from .credentials.service_client import make_service_issuer  # only when configured

        return make_service_issuer(settings)

    @property
    def extra_issuer_objects(self) -> dict[str, Issuer]:
        """The issuers of extra_issuers, by name, made once."""
        if self._extra_issuers is None:
            self._extra_issuers = {name: self.make_issuer(settings)
                                   for name, settings in extra_issuer_settings(self.extra_issuers).items()}
        return self._extra_issuers

    def issuer_named(self, name: str) -> Issuer | None:
        """The issuer a cluster names (MAIN_ISSUER: the main one); None if there is none so named."""
        return self.issuer if name == MAIN_ISSUER else self.extra_issuer_objects.get(name)

    def user_checks_at_login(self) -> list[str]:
        """Who checks the user's password at a form login: the issuers that check it themselves,
        and the hub (its authenticator) when the main issuer does not."""
        checks = [f"the main issuer ({self.credential_issuer})" if self.issuer.checks_the_user
                  else "the hub's authenticator"]
        return checks + [f"extra issuer {name!r}" for name, issuer in self.extra_issuer_objects.items()
                         if issuer.checks_the_user]

    def cluster_username(self, hub_username: str) -> str:
        return check_cluster_username(self.cluster_usernames.get(hub_username, hub_username))

    # ----- login --------------------------------------------------------------------
    async def authenticate(self, handler, data):
        result = await super().authenticate(handler, data)
        if not result:
            return result
        return await self.issue_at_login(data, {"name": result} if isinstance(result, str) else result)

    async def issue_at_login(self, data: dict | None, result: dict) -> dict | None:
        """The login's credentials, into the auth model `result`. None when the issuer refused
        the password it checked itself (the login page says so, as for any wrong password)."""
        name = result["name"]
        proof = self.login_proof(data, result)
        try:
            principal = self.cluster_username(name)
            credential = await self.issuer.issue(principal, proof, int(time.time()))
        except LoginRefused as exc:
            self.log.warning("Login of %s refused by the issuer: %s", name, exc.log_detail)
            return None
        except CredentialError as exc:
            self.log.error("No credential for %s: %s", name, exc.log_detail)
            status = 503 if isinstance(exc, IssuerUnavailable) else 403
            raise login_refused(status, exc.user_message,
                                "Credentials unavailable" if status == 503 else "Sign-in refused") from None
        self.log.info("Issued %s for %s (valid until %s)", credential.key_id, name,
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(credential.valid_before)))
        credentials = CredentialSet(int(time.time())).with_credential(credential)
        for issuer_name, issuer in self.extra_issuer_objects.items():
            credentials = await self._with_extra_credential(credentials, issuer_name, issuer, name, principal, proof)
        if self.grid_issuer is not None:
            credentials = await self._with_grid_credential(credentials, name, principal, proof.password)
        result["auth_state"] = credentials.to_auth_state(result.get("auth_state"))
        return result

    def login_proof(self, data: dict | None, result: dict) -> LoginProof:
        """What this login showed, for an issuer that checks the user itself: the password of
        a form login. Authenticators with other proofs (an identity provider's ID token)
        override this; it is also where they refuse a login whose proof is not enough."""
        data = data or {}
        return LoginProof(password=data.get("password"), one_time_code=data.get("otp") or None)

    async def _with_extra_credential(self, credentials: CredentialSet, issuer_name: str, issuer: Issuer,
                                     name: str, principal: str, proof: LoginProof) -> CredentialSet:
        """The login's certificate from a further issuer. Its refusal or absence does not refuse
        the login: the clusters that trust it say the certificate is missing."""
        try:
            credential = await issuer.issue(principal, proof, credentials.session_started)
        except CredentialError as exc:
            self.log.error("No certificate from extra issuer %r for %s (logging in without it): %s",
                           issuer_name, name, exc.log_detail)
            return credentials
        self.log.info("Issued %s for %s from extra issuer %r (valid until %s)", credential.key_id, name, issuer_name,
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(credential.valid_before)))
        return credentials.with_credential(credential, issuer_name)

    async def _with_grid_credential(self, credentials: CredentialSet, name: str, principal: str,
                                    password: str | None) -> CredentialSet:
        """The login's X.509 credential from MyProxy. A refusal refuses the login; a MyProxy
        server that cannot be reached does not (Jupyter works without grid tools)."""
        try:
            grid = await self.grid_issuer.issue(principal, password)
        except IssuerUnavailable as exc:
            self.log.error("No grid credential for %s (logging in without one): %s", name, exc.log_detail)
            return credentials
        except CredentialError as exc:
            self.log.error("Grid credential refused for %s: %s", name, exc.log_detail)
            raise login_refused(403, exc.user_message) from None
        self.log.info("Got a grid credential for %s: %s (valid until %s)", name, grid.subject,
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(grid.valid_before)))
        return credentials.with_credential(grid)

    # ----- renewal --------------------------------------------------------------------
    async def refresh_user(self, user, handler=None, **kwargs):
        """The authenticator's own refresh first (an identity provider that no longer knows the
        user ends the session here); then the certificate: True while it has time left, a
        renewed auth_state when it runs low, False (log in again) when it cannot be renewed."""
        upstream = await super().refresh_user(user, handler, **kwargs)
        if upstream is False:
            self.log.info("The login of %s has ended at its authenticator; asking for a new login", user.name)
            return False
        auth_state = await user.get_auth_state()
        if isinstance(upstream, dict) and upstream.get("auth_state") is not None:
            # The authenticator's fresh tokens, with the credentials it knows nothing of kept.
            auth_state = {**(auth_state or {}), **upstream["auth_state"]}
        model = await self._refreshed_credentials(user, auth_state)
        if model is True and isinstance(upstream, dict):
            return {**upstream, "name": user.name, "auth_state": auth_state}
        return model

    async def _refreshed_credentials(self, user, auth_state: dict | None):
        try:
            credentials = CredentialSet.from_auth_state(auth_state)
        except CredentialError as exc:
            self.log.warning("Unusable credentials for %s: %s", user.name, exc.log_detail)
            return False
        if credentials is None or credentials.ssh is None:
            return False
        grid = credentials.x509
        if grid is not None and grid.remaining() < self.myproxy_min_remaining:
            # Renewal would need the password: the session's grid credential has run out.
            self.log.info("The grid credential of %s runs out (%s); asking for a new login", user.name, grid.subject)
            return False
        renewed_set = credentials
        for issuer_name in credentials.ssh_issuers():
            current = credentials.ssh_from(issuer_name)
            issuer = self.issuer_named(issuer_name)
            if current.remaining() > self.renew_when_remaining or issuer is None:
                continue  # (an issuer no longer configured: its certificate runs out)
            try:
                renewed = await issuer.renew(current.principal, current, credentials.session_started)
            except LoginRequired as exc:
                self.log.info("Credential of %s cannot be renewed: %s", user.name, exc.log_detail)
                return False
            except CredentialError as exc:
                # The issuer is down: keep going on the current certificate while it lasts.
                self.log.error("Renewing the credential of %s failed: %s", user.name, exc.log_detail)
                if issuer_name == MAIN_ISSUER and current.expired():
                    return False
                continue
            self.log.info("Renewed %s for %s as %s", current.key_id, user.name, renewed.key_id)
            renewed_set = renewed_set.with_credential(renewed, issuer_name)
        if renewed_set is credentials:
            return True
        return {"name": user.name, "auth_state": renewed_set.to_auth_state(auth_state)}

    # ----- the hub's own identity -------------------------------------------------------
    async def service_account_credential(self, account: str = "", issuer: str = MAIN_ISSUER) -> SSHCredential:
        """The hub's certificate for the service account (or, for a cluster that names its own
        in HPCSpawner.clusters, for `account`), issued or renewed as needed by the main issuer
        or the one the cluster names; or the site's static one, re-read when it changes."""
        name = account or self.service_account
        if issuer != MAIN_ISSUER:
            return await self._issued_service_credential(issuer, name)
        if self._static_service_account is not None:
            if name != self.service_account:
                raise CredentialError(
                    "the hub has no certificate for this cluster's service account; the administrators have been told",
                    f"service account {name!r}: service_account_key holds a certificate for {self.service_account!r} "
                    "only; give the cluster that account, or use an issuer")
            return self._static_service_account.current()
        return await self._issued_service_credential(MAIN_ISSUER, name)

    async def _issued_service_credential(self, issuer_name: str, account: str) -> SSHCredential:
        issuer = self.issuer_named(issuer_name)
        if issuer is None:
            raise ConfigurationError(f"no issuer named {issuer_name!r} in CredentialIssuingAuthenticator.extra_issuers")
        current = self._service_credentials.get((issuer_name, account))
        if current is None or current.remaining() < self.renew_when_remaining:
            current = self._service_credentials[(issuer_name, account)] = await issuer.issue_service_account(
                check_cluster_username(account))
        return current


class PAMCredentialAuthenticator(CredentialIssuingAuthenticator, PAMAuthenticator):
    """PAM password login (the demo site's), with credentials issued at login.

    With `request_otp`, the login form's one-time code is appended to the password, as
    pam_google_authenticator's `forward_pass` and NERSC's sshproxy take them. The password
    and code go through PAM once per login: here, or, when the issuer checks the user itself
    (the CA service), only there - a one-time code checked twice would be refused the second
    time."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        checks = self.user_checks_at_login()
        if self.request_otp and len(checks) > 1:
            raise ConfigurationError(
                f"with request_otp, the password and one-time code would be checked {len(checks)} times at each "
                f"login ({', '.join(checks)}), and a one-time code is refused the second time: let one of them "
                "check the user (make the extra issuers local CAs, or use one CA service)")

    async def authenticate(self, handler, data):
        data = dict(data or {})
        data["otp"] = str(data.get("otp") or "").strip()
        if self.issuer.checks_the_user:
            if not data.get("username") or not data.get("password"):
                return None
            return await self.issue_at_login(data, {"name": data["username"]})
        # The hub checks: PAM gets the code after the password, in one answer.
        checked = await PAMAuthenticator.authenticate(self, handler, {
            "username": data.get("username", ""), "password": f"{data.get('password', '')}{data['otp']}"})
        if not checked:
            return checked
        return await self.issue_at_login(data, {"name": checked} if isinstance(checked, str) else checked)
