"""Train DeepLabV3Plus on one fold (= `trashseg train --model deeplab`): python code/DeepLabV3Plus/train.py --fold 0"""

from trashseg.cli.folder import run_folder

if __name__ == "__main__":
    run_folder(__file__, "train")
