"""A botocore session that sees only the injected environment and home directory.

botocore implements the standard AWS credential chain — environment variables, assume-role
and web-identity profiles, SSO, ``credential_process``, the shared credentials and config
files, the ECS/EKS container endpoint, IMDSv2 — and SigV4. Its default session reads
``os.environ`` and ``~`` though, so this module assembles the same chain from botocore's
public provider classes with the environment passed in explicitly, in botocore's order
(``create_credential_resolver``).
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    ConfigChainFactory,
    ConfiguredEndpointProvider,
)
from botocore.credentials import (
    AssumeRoleProvider,
    AssumeRoleWithWebIdentityProvider,
    CanonicalNameCredentialSourcer,
    ContainerProvider,
    CredentialResolver,
    EnvProvider,
    InstanceMetadataProvider,
    ProfileProviderBuilder,
)
from botocore.utils import InstanceMetadataFetcher, JSONFileCache, resolve_imds_endpoint_mode

from imagebot.registry.providers.env import Environment

# botocore refreshes temporary AWS credentials (container, IMDS, web identity) this long
# before they expire; same value as botocore's own default chain.
_AWS_CREDENTIAL_REFRESH_WINDOW = 15 * 60

# Web identity from the environment (EKS IRSA sets these on the pod).
_WEB_IDENTITY_ENV = {
    "web_identity_token_file": "AWS_WEB_IDENTITY_TOKEN_FILE",
    "role_arn": "AWS_ROLE_ARN",
    "role_session_name": "AWS_ROLE_SESSION_NAME",
}


class InjectedEnvSession(botocore.session.Session):
    """A botocore session whose configuration, endpoints and credentials come from
    ``environment`` instead of the process environment."""

    def __init__(self, environment: Environment, *, profile: str | None = None) -> None:
        super().__init__()
        self._environment = environment
        store = self.get_component("config_store")
        chains = ConfigChainFactory(session=self, environ=environment.vars)
        for name, spec in BOTOCORE_DEFAUT_SESSION_VARIABLES.items():
            config_key, env_vars, default, convert = spec
            store.set_config_provider(
                name,
                chains.create_config_chain(
                    instance_name=name,
                    env_var_names=env_vars,
                    config_property_names=config_key,
                    default=default,
                    conversion_func=convert,
                ),
            )
        config_file = environment.get("AWS_CONFIG_FILE")
        credentials_file = environment.get("AWS_SHARED_CREDENTIALS_FILE")
        self.set_config_variable(
            "config_file",
            str(environment.path(config_file) if config_file else environment.home / ".aws/config"),
        )
        self.set_config_variable(
            "credentials_file",
            str(
                environment.path(credentials_file)
                if credentials_file
                else environment.home / ".aws/credentials"
            ),
        )
        if profile is not None:
            self.set_config_variable("profile", profile)
        # Endpoint overrides (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, `services`
        # sections) are resolved in create_client below from the injected environment.
        self.set_config_variable("ignore_configured_endpoint_urls", True)
        self.register_component("credential_provider", self._credential_resolver())

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        service_name = kwargs["service_name"] if "service_name" in kwargs else args[0]
        if kwargs.get("endpoint_url") is None and len(args) < 6:
            kwargs["endpoint_url"] = ConfiguredEndpointProvider(
                full_config=self.full_config,
                scoped_config=self.get_scoped_config(),
                client_name=service_name,
                environ=self._environment.vars,
            ).provide()
        return super().create_client(*args, **kwargs)

    def _credential_resolver(self) -> CredentialResolver:
        env = self._environment.vars
        profile_name = self.get_config_variable("profile") or "default"
        explicit_profile = self.instance_variables().get("profile") is not None
        cache: dict[str, Any] = {}
        sso_cache = JSONFileCache(str(self._environment.home / ".aws" / "sso" / "cache"))

        def sts_client(service_name: str, **kwargs: Any) -> Any:
            kwargs.setdefault("region_name", self.get_config_variable("region"))
            return self.create_client(service_name, **kwargs)

        env_provider = EnvProvider(environ=env)
        container_provider = ContainerProvider(environ=env)
        imds_provider = InstanceMetadataProvider(
            iam_role_fetcher=InstanceMetadataFetcher(
                timeout=self.get_config_variable("metadata_service_timeout"),
                num_attempts=self.get_config_variable("metadata_service_num_attempts"),
                user_agent=self.user_agent(),
                env=env,
                config={
                    "ec2_metadata_service_endpoint": self.get_config_variable(
                        "ec2_metadata_service_endpoint"
                    ),
                    "ec2_metadata_service_endpoint_mode": resolve_imds_endpoint_mode(self),
                    "ec2_credential_refresh_window": _AWS_CREDENTIAL_REFRESH_WINDOW,
                    "ec2_metadata_v1_disabled": self.get_config_variable(
                        "ec2_metadata_v1_disabled"
                    ),
                },
            )
        )
        # botocore-stubs types the token cache as a dict; botocore takes any mapping-like cache.
        builder = ProfileProviderBuilder(self, cache=cache, sso_token_cache=sso_cache)  # type: ignore[arg-type]
        assume_role_provider = AssumeRoleProvider(
            load_config=lambda: self.full_config,
            client_creator=sts_client,
            cache=cache,
            profile_name=profile_name,
            credential_sourcer=CanonicalNameCredentialSourcer(
                [env_provider, container_provider, imds_provider]
            ),
            profile_provider_builder=builder,
        )
        providers: list[Any] = []
        if not explicit_profile:
            # An explicitly configured profile overrides credentials in the environment,
            # as in botocore's chain.
            web_identity_from_env = {
                key: env[var] for key, var in _WEB_IDENTITY_ENV.items() if env.get(var)
            }
            providers.append(env_provider)
            providers.append(
                AssumeRoleWithWebIdentityProvider(
                    load_config=lambda: {"profiles": {profile_name: web_identity_from_env}},
                    client_creator=sts_client,
                    profile_name=profile_name,
                    cache=cache,
                    disable_env_vars=True,
                )
            )
        providers.append(assume_role_provider)
        providers.extend(builder.providers(profile_name=profile_name, disable_env_vars=True))
        providers.extend([container_provider, imds_provider])
        return CredentialResolver(providers=providers)
