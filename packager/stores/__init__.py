"""Object stores for code packages, behind one small interface (see `base.CodeStore`)."""

from packager.stores.base import CodeStore, object_name, open_store, split_url, store_holding

__all__ = ["CodeStore", "object_name", "open_store", "split_url", "store_holding"]
