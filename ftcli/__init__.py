"""ftcli: config-driven fine-tuning and transfer learning of pretrained vision and text networks."""

from ftcli import import_guard

__version__ = "0.1.0"

# before anything imports Lightning: torchmetrics must not import transformers on image runs
import_guard.install()
