"""Everything about images: files on disk, transforms, the uint8 store, augmentation on the device,
image datasets and the image datamodules. The modality-neutral core sits one level up in ``ftcli.data``."""
