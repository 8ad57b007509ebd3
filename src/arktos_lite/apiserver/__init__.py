"""The API server: Kubernetes REST semantics with Arktos multi-tenancy, over the store.

The only component that touches storage; everything else reaches the cluster through it.
"""

from arktos_lite.apiserver._authn import (
    Authenticator as Authenticator,
    User as User,
    load_token_file as load_token_file,
)
from arktos_lite.apiserver._http import Limits as Limits
from arktos_lite.apiserver._kubeconfig import (
    write_kubeconfig as write_kubeconfig,
    write_partitioned_kubeconfig as write_partitioned_kubeconfig,
)
from arktos_lite.apiserver._migrate import TargetNotEmpty as TargetNotEmpty, migrate as migrate
from arktos_lite.apiserver._pki import Pki as Pki, ensure_pki as ensure_pki
from arktos_lite.apiserver._server import (
    APIServer as APIServer,
    Bound as Bound,
    ServeOptions as ServeOptions,
    TLSFiles as TLSFiles,
)
