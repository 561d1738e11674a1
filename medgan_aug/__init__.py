"""medgan_aug: DCGAN data augmentation for MONAI, and the measurement of whether it helps."""

from medgan_aug.data import MedMNISTDataset, MedMNISTFileError, load_medmnist_npz, low_data_indices

__version__ = "0.1.0"

__all__ = ["MedMNISTDataset", "MedMNISTFileError", "load_medmnist_npz", "low_data_indices", "__version__"]
