"""Train Segformer on one fold (= `trashseg train --model <its name>`): python code/Segformer/train.py --fold 0"""

from trashseg.cli.folder import run_folder

if __name__ == "__main__":
    run_folder(__file__, "train")
