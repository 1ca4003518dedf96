"""ftcli: config-driven fine-tuning and transfer learning of pretrained vision networks."""

__version__ = "0.1.0"
