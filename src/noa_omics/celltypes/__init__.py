"""Work in progress: replaced by the real implementation (TEMPORARY STUB)."""

def annotate_testis(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('annotate_testis is not implemented yet')

def apoptosis_profile(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('apoptosis_profile is not implemented yet')

def compare_conditions(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('compare_conditions is not implemented yet')

def enrichment(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('enrichment is not implemented yet')

def harmonize_labels(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('harmonize_labels is not implemented yet')
